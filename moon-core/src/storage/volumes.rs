//! A job's volumes, resolved when it is submitted: each one's system, the URL of its
//! directory and that directory below the tenant's own, confined to the tenant's part of
//! each system as the tenant's stores are ([`TenantStorage::locate`]).

use moon_spec::spec::{Job, StorageSystem, Tenant, check_volumes_of_tenant};
use moon_spec::volumes::ResolvedVolume;
use moon_storage::StorePath;

use super::servers::StorageServers;
use super::tenant::TenantStorage;
use crate::error::{Error, Result};

/// Resolves `job`'s volumes against `servers` for its tenant `tenant`. Refuses, before
/// anything runs: a volume on a system the tenant has no storage on (`InvalidSpec`, at the
/// volume's field), one whose system the platform has no server for (`NotSupported`, naming
/// the setting, as applying such a tenant is), and a URL outside the tenant's part of its
/// system (`PermissionDenied`).
pub fn resolve(
    job: &Job,
    tenant: &Tenant,
    servers: &StorageServers,
) -> Result<Vec<ResolvedVolume>> {
    check_volumes_of_tenant(job, tenant)?;
    let storage = TenantStorage::new(tenant, servers);
    let mut resolved = Vec::with_capacity(job.volumes.len());
    for (i, volume) in job.volumes.iter().enumerate() {
        let Some(system) = volume.system() else {
            // Validation let no such volume through.
            return Err(Error::Agent(format!(
                "volumes[{i}] names no storage system"
            )));
        };
        check_server(job, i, system, servers)?;
        let below = match (&volume.store, &volume.url) {
            (Some(_), _) => match volume.path.as_deref().unwrap_or_default() {
                "" => String::new(),
                path => StorePath::parse(path)?.as_str().to_string(),
            },
            (None, Some(url)) => storage.locate(url)?.below,
            (None, None) => return Err(Error::Agent(format!("volumes[{i}] has no source"))),
        };
        resolved.push(ResolvedVolume {
            name: volume.name.clone(),
            system,
            url: storage.url_of(system, &below)?,
            path: below,
            mount_path: volume.mount_path.clone(),
            read_only: volume.read_only,
            cached: volume.cached,
        });
    }
    Ok(resolved)
}

/// The platform's setting that `system` needs, as [`super::check_servers`] names it for a
/// tenant.
fn check_server(
    job: &Job,
    i: usize,
    system: StorageSystem,
    servers: &StorageServers,
) -> Result<()> {
    let (configured, setting, form) = match system {
        StorageSystem::Seaweedfs => (
            servers.seaweedfs.is_some(),
            "MOON_SEAWEEDFS",
            "seaweedfs://filer:port?master=host:port",
        ),
        StorageSystem::Hdfs => (servers.hdfs.is_some(), "MOON_HDFS", "hdfs://namenode:port"),
        StorageSystem::Gluster => (
            servers.gluster.is_some(),
            "MOON_GLUSTER",
            "gluster://host[:port][,host...]",
        ),
    };
    if configured {
        Ok(())
    } else {
        Err(Error::NotSupported(format!(
            "job {}/{}: volumes[{i}] needs the platform's {system}: set {setting} ({form})",
            job.tenant, job.name
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use moon_spec::spec::{job_from_yaml, tenant_from_yaml};

    fn servers() -> StorageServers {
        StorageServers::default()
            .with_seaweedfs("seaweedfs://filer:8888?master=master:9333")
            .unwrap()
            .with_hdfs("hdfs://namenode:8020", Default::default())
            .unwrap()
            .with_gluster("gluster://gluster-0", Default::default())
            .unwrap()
    }

    fn tenant() -> Tenant {
        tenant_from_yaml("name: vision\nstorage: {seaweedfs: {}, hdfs: {}, gluster: {size: 1Gi}}")
            .unwrap()
    }

    fn job(volumes: &str) -> Job {
        job_from_yaml(&format!(
            "name: train\ntenant: vision\nframework: custom\n\
             roles: [{{name: main, command: [python3]}}]\nvolumes:\n{volumes}"
        ))
        .unwrap()
    }

    #[test]
    fn a_store_and_path_and_a_url_resolve_to_the_tenants_directories() {
        let job = job(
            "- {name: data, store: seaweedfs, path: datasets/mnist, mountPath: /data, readOnly: true}\n\
             - {name: raw, url: 'hdfs://namenode:8020/tenants/vision/raw', mountPath: /raw}\n\
             - {name: shared, url: 'gluster://gluster-0/moon-vision', mountPath: /shared}\n",
        );
        let resolved = resolve(&job, &tenant(), &servers()).unwrap();
        let shown: Vec<_> = resolved
            .iter()
            .map(|v| (v.system, v.url.as_str(), v.path.as_str(), v.read_only))
            .collect();
        assert_eq!(
            shown,
            [
                (
                    StorageSystem::Seaweedfs,
                    "seaweedfs://filer:8888/tenants/vision/datasets/mnist?collection=moon-vision&master=master:9333",
                    "datasets/mnist",
                    true
                ),
                (
                    StorageSystem::Hdfs,
                    "hdfs://namenode:8020/tenants/vision/raw",
                    "raw",
                    false
                ),
                (
                    StorageSystem::Gluster,
                    "gluster://gluster-0:24007/moon-vision",
                    "",
                    false
                ),
            ]
        );
    }

    #[test]
    fn a_url_outside_the_tenants_part_is_permission_denied() {
        for url in [
            "seaweedfs://filer:8888/tenants/nlp/datasets",
            "hdfs://namenode:8020/tenants",
            "hdfs://other:8020/tenants/vision",
            "gluster://gluster-0/moon-nlp/shared",
        ] {
            let job = job(&format!(
                "- {{name: data, url: '{url}', mountPath: /data}}\n"
            ));
            match resolve(&job, &tenant(), &servers()) {
                Err(Error::PermissionDenied(message)) => {
                    assert!(
                        message.contains("tenant \"vision\" may not reach"),
                        "{message}"
                    )
                }
                other => panic!("{url}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_system_without_a_server_is_named_by_its_setting() {
        let job = job("- {name: shared, store: gluster, mountPath: /shared}\n");
        let servers = StorageServers::default()
            .with_seaweedfs("seaweedfs://filer:8888")
            .unwrap();
        match resolve(&job, &tenant(), &servers) {
            Err(Error::NotSupported(message)) => assert_eq!(
                message,
                "job vision/train: volumes[0] needs the platform's gluster: set MOON_GLUSTER \
                 (gluster://host[:port][,host...])"
            ),
            other => panic!("{other:?}"),
        }
    }
}

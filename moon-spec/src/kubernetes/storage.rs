//! A tenant's storage as Kubernetes objects: volumes its jobs can mount by a
//! stable claim name, and for HDFS with a cache, a Fluid Dataset served by
//! Alluxio. See the table in `docs/kubernetes-backend.md`.
//!
//! Where the storage servers are is the platform's setting
//! ([`StorageEndpoints`]), never the tenant's; a tenant that asks for a system
//! whose address is not set is refused with the setting's name.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1 as core;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as KubeQuantity;
use serde_json::{Value, json};

use super::fluid::{AlluxioRuntime, Dataset};
use super::meta::{TENANT_LABEL, labels, memory_quantity, meta};
use super::object::Object;
use crate::error::{Error, Result};
use crate::spec::{HdfsStorage, Tenant, validate_tenant};
use crate::storage;

/// The claim, in the tenant's namespace, of its SeaweedFS directory.
pub const SEAWEEDFS_CLAIM: &str = "moon-seaweedfs";
/// The claim, in the tenant's namespace, of its Gluster volume.
pub const GLUSTER_CLAIM: &str = "moon-gluster";
/// The Fluid Dataset (and its AlluxioRuntime) of the tenant's HDFS home;
/// Fluid makes a claim of the same name once the runtime is ready.
pub const HDFS_DATASET: &str = "moon-hdfs";
/// The name of the Dataset's one mount, the tenant's HDFS home: Fluid serves it in a
/// directory of this name at the root of the Dataset's claim.
pub const HDFS_DATASET_MOUNT: &str = "hdfs";
/// SeaweedFS's CSI driver, as it registers itself.
pub const SEAWEEDFS_CSI_DRIVER: &str = "seaweedfs-csi-driver";
/// Kadalu's CSI driver, which mounts Gluster volumes it did not create
/// (its `External` storage).
pub const GLUSTER_CSI_DRIVER: &str = "kadalu";
/// Where Alluxio's pods find the tenant's keytab.
pub const KEYTAB_DIR: &str = "/etc/moon/kerberos";
/// The key of a keytab secret that holds the keytab.
pub const KEYTAB_KEY: &str = "KEYTAB";

/// A SeaweedFS directory has no size; its volume states this one because a
/// PersistentVolume must state one. It limits nothing.
const SEAWEEDFS_NOMINAL_CAPACITY: &str = "1Pi";
/// What a claim asks for. A claim bound to a named volume gets that volume,
/// whatever its size; asking for little keeps a raised Gluster size from
/// being a claim resize, which Kubernetes refuses for volumes it did not
/// provision. The claim's `status.capacity` shows the volume's real size.
const CLAIM_REQUEST: &str = "1Mi";
/// Where an Alluxio worker keeps its disk tier, on its node.
const CACHE_DISK_PATH: &str = "/var/lib/moon/alluxio";
const KEYTAB_VOLUME: &str = "moon-kerberos-keytab";
const KEYTAB_FILE: &str = "keytab";

/// Where the storage servers a tenant's volumes point at are.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StorageEndpoints {
    /// The HDFS namenode as `host:port` (`MOON_HDFS`); HDFS mounts name it.
    pub hdfs_namenode: Option<String>,
    /// The Gluster servers, comma-separated hosts (`MOON_GLUSTER`).
    pub gluster_servers: Option<String>,
}

/// The objects of `tenant`'s storage, to apply after [`render_tenant`](super::render_tenant)'s:
/// for SeaweedFS a PersistentVolume and its claim, for Gluster the same, for
/// HDFS with a cache a Dataset and its AlluxioRuntime. HDFS without a cache
/// renders nothing: jobs reach the namenode over the network.
///
/// The SeaweedFS filer is the CSI driver's own setting (every volume it
/// mounts comes from the filer it was deployed with), so no endpoint names it.
pub fn render_tenant_storage(tenant: &Tenant, endpoints: &StorageEndpoints) -> Result<Vec<Object>> {
    validate_tenant(tenant)?;
    let name = tenant.name.as_str();
    let labels = labels(&tenant.labels, &[(TENANT_LABEL, name)]);
    let mut objects = Vec::new();

    if let Some(seaweedfs) = &tenant.storage.seaweedfs {
        let mut attributes = BTreeMap::from([
            (
                "collection".to_string(),
                storage::seaweedfs_collection(name),
            ),
            ("path".to_string(), storage::seaweedfs_dir(name)),
        ]);
        if let Some(replication) = &seaweedfs.replication {
            attributes.insert("replication".to_string(), replication.clone());
        }
        let volume = volume_name(name, "seaweedfs");
        objects.push(
            persistent_volume(
                &volume,
                name,
                SEAWEEDFS_CLAIM,
                &labels,
                KubeQuantity(SEAWEEDFS_NOMINAL_CAPACITY.to_string()),
                core::CSIPersistentVolumeSource {
                    driver: SEAWEEDFS_CSI_DRIVER.to_string(),
                    volume_handle: volume.clone(),
                    volume_attributes: Some(attributes),
                    ..core::CSIPersistentVolumeSource::default()
                },
            )
            .into(),
        );
        objects.push(claim(SEAWEEDFS_CLAIM, name, &volume, &labels).into());
    }

    if let Some(gluster) = &tenant.storage.gluster {
        let servers = endpoint(
            &endpoints.gluster_servers,
            name,
            "gluster",
            "gluster_servers",
        )?;
        let size = memory_quantity(&gluster.size, "tenant", "storage.gluster.size")?;
        let volume = volume_name(name, "gluster");
        let attributes = BTreeMap::from([
            ("hostvol_type".to_string(), "External".to_string()),
            ("gluster_hosts".to_string(), servers.to_string()),
            ("gluster_volname".to_string(), storage::gluster_volume(name)),
        ]);
        objects.push(
            persistent_volume(
                &volume,
                name,
                GLUSTER_CLAIM,
                &labels,
                size,
                core::CSIPersistentVolumeSource {
                    driver: GLUSTER_CSI_DRIVER.to_string(),
                    volume_handle: volume.clone(),
                    volume_attributes: Some(attributes),
                    ..core::CSIPersistentVolumeSource::default()
                },
            )
            .into(),
        );
        objects.push(claim(GLUSTER_CLAIM, name, &volume, &labels).into());
    }

    if let Some(hdfs) = &tenant.storage.hdfs
        && hdfs.cache.is_some()
    {
        let namenode = endpoint(&endpoints.hdfs_namenode, name, "hdfs", "hdfs_namenode")?;
        let (dataset, runtime) = fluid(name, namenode, hdfs, &labels)?;
        objects.push(dataset.into());
        objects.push(runtime.into());
    }
    Ok(objects)
}

/// A PersistentVolume's name: volumes are cluster-wide, so it carries the tenant's.
fn volume_name(tenant: &str, system: &str) -> String {
    format!("moon-{tenant}-{system}")
}

fn endpoint<'a>(
    value: &'a Option<String>,
    tenant: &str,
    system: &str,
    field: &str,
) -> Result<&'a str> {
    value
        .as_deref()
        .filter(|value| !value.is_empty())
        .ok_or_else(|| {
            Error::NotSupported(format!(
                "tenant {tenant} asks for storage.{system}, but StorageEndpoints.{field} is not set"
            ))
        })
}

/// A volume made for one claim only: `claimRef` reserves it, an empty
/// storage class keeps provisioners away, and `Retain` keeps the data when
/// the claim goes.
fn persistent_volume(
    name: &str,
    tenant: &str,
    claim: &str,
    labels: &BTreeMap<String, String>,
    capacity: KubeQuantity,
    csi: core::CSIPersistentVolumeSource,
) -> core::PersistentVolume {
    core::PersistentVolume {
        metadata: meta(name, None, labels),
        spec: Some(core::PersistentVolumeSpec {
            access_modes: Some(vec!["ReadWriteMany".to_string()]),
            capacity: Some(BTreeMap::from([("storage".to_string(), capacity)])),
            claim_ref: Some(core::ObjectReference {
                namespace: Some(tenant.to_string()),
                name: Some(claim.to_string()),
                ..core::ObjectReference::default()
            }),
            csi: Some(csi),
            persistent_volume_reclaim_policy: Some("Retain".to_string()),
            storage_class_name: Some(String::new()),
            volume_mode: Some("Filesystem".to_string()),
            ..core::PersistentVolumeSpec::default()
        }),
        ..core::PersistentVolume::default()
    }
}

fn claim(
    name: &str,
    tenant: &str,
    volume: &str,
    labels: &BTreeMap<String, String>,
) -> core::PersistentVolumeClaim {
    core::PersistentVolumeClaim {
        metadata: meta(name, Some(tenant), labels),
        spec: Some(core::PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteMany".to_string()]),
            resources: Some(core::VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_string(),
                    KubeQuantity(CLAIM_REQUEST.to_string()),
                )])),
                ..core::VolumeResourceRequirements::default()
            }),
            storage_class_name: Some(String::new()),
            volume_mode: Some("Filesystem".to_string()),
            volume_name: Some(volume.to_string()),
            ..core::PersistentVolumeClaimSpec::default()
        }),
        ..core::PersistentVolumeClaim::default()
    }
}

/// The tenant's HDFS home as a Dataset, cached by an AlluxioRuntime whose
/// tiers are the cache's sizes. With Kerberos, Alluxio reads HDFS as the
/// tenant's principal with the keytab of its secret, mounted into Alluxio's
/// pods; the keytab is referred to, never copied into these objects.
fn fluid(
    tenant: &str,
    namenode: &str,
    hdfs: &HdfsStorage,
    labels: &BTreeMap<String, String>,
) -> Result<(Dataset, AlluxioRuntime)> {
    let cache = hdfs.cache.as_ref().expect("called for a cache");
    let mut mount = json!({
        "name": HDFS_DATASET_MOUNT,
        "mountPoint": format!("hdfs://{namenode}{}", storage::hdfs_home(tenant)),
    });
    let mut runtime_spec = json!({"replicas": 1});

    let mut levels = Vec::new();
    if let Some(memory) = &cache.memory {
        let quota = memory_quantity(memory, "tenant", "storage.hdfs.cache.memory")?;
        levels.push(json!({"mediumtype": "MEM", "path": "/dev/shm", "quota": quota.0}));
    }
    if let Some(disk) = &cache.disk {
        let quota = memory_quantity(disk, "tenant", "storage.hdfs.cache.disk")?;
        levels.push(json!({"mediumtype": "SSD", "path": CACHE_DISK_PATH, "quota": quota.0}));
    }
    runtime_spec["tieredstore"] = json!({"levels": levels});

    if let Some(kerberos) = &hdfs.kerberos {
        let keytab = format!("{KEYTAB_DIR}/{KEYTAB_FILE}");
        mount["options"] = json!({
            "alluxio.security.underfs.hdfs.kerberos.client.principal": kerberos.principal,
            "alluxio.security.underfs.hdfs.kerberos.client.keytab.file": keytab,
            "alluxio.security.underfs.hdfs.impersonation.enabled": "false",
        });
        // A tenant secret's Kubernetes Secret has the secret's own name
        // (`render_secret`), so the keytab secret is found by its name.
        runtime_spec["volumes"] = json!([{
            "name": KEYTAB_VOLUME,
            "secret": {
                "secretName": kerberos.keytab_secret,
                "items": [{"key": KEYTAB_KEY, "path": KEYTAB_FILE}],
            },
        }]);
        let mounts: Value =
            json!([{"name": KEYTAB_VOLUME, "mountPath": KEYTAB_DIR, "readOnly": true}]);
        for component in ["master", "worker", "fuse"] {
            runtime_spec[component] = json!({"volumeMounts": mounts});
        }
    }

    let dataset = Dataset {
        metadata: meta(HDFS_DATASET, Some(tenant), labels),
        spec: json!({"mounts": [mount]}),
    };
    let runtime = AlluxioRuntime {
        metadata: meta(HDFS_DATASET, Some(tenant), labels),
        spec: runtime_spec,
    };
    Ok((dataset, runtime))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::tenant_from_yaml;

    fn tenant(storage: &str) -> Tenant {
        tenant_from_yaml(&format!("name: vision\nstorage:\n{storage}")).unwrap()
    }

    #[test]
    fn a_missing_endpoint_is_named() {
        let error = render_tenant_storage(
            &tenant("  gluster: {size: 10Gi}\n"),
            &StorageEndpoints::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("StorageEndpoints.gluster_servers"),
            "{error}"
        );
        let error = render_tenant_storage(
            &tenant("  hdfs: {cache: {memory: 1Gi}}\n"),
            &StorageEndpoints::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("StorageEndpoints.hdfs_namenode"), "{error}");
    }

    #[test]
    fn hdfs_without_a_cache_and_no_storage_render_nothing() {
        let endpoints = StorageEndpoints::default();
        assert!(
            render_tenant_storage(&tenant("  hdfs: {spaceQuota: 1Ti}\n"), &endpoints)
                .unwrap()
                .is_empty()
        );
        let bare = tenant_from_yaml("name: vision\n").unwrap();
        assert!(render_tenant_storage(&bare, &endpoints).unwrap().is_empty());
    }
}

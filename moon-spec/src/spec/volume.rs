//! A job's volumes: a directory of its tenant's storage that every replica sees.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One volume of a job: where its data comes from (the tenant's `store` and a `path` in it,
/// or a `url`), and where replicas find it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Volume {
    /// DNS label naming the volume, unique in the job; replicas find it in
    /// `MOON_VOLUME_<NAME>` and `MOON_VOLUME_<NAME>_PATH`.
    pub name: String,
    /// One of the tenant's own stores; the volume is `path` in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<StorageSystem>,
    /// A relative directory in `store` (its root when left out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Instead of `store` and `path`: a `seaweedfs://`, `hdfs://` or `gluster://` URL inside the
    /// tenant's part of that system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Where replicas see the volume: an absolute path, unique in the job.
    pub mount_path: String,
    /// Whether replicas may only read it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub read_only: bool,
    /// Whether reads go through a cache (HDFS only, read-only: Fluid's Alluxio on Kubernetes).
    #[serde(default, skip_serializing_if = "is_false")]
    pub cached: bool,
}

fn is_false(value: &bool) -> bool {
    !value
}

/// A storage system a tenant can have space on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageSystem {
    /// SeaweedFS: the tenant's filer directory.
    Seaweedfs,
    /// HDFS: the tenant's home directory.
    Hdfs,
    /// GlusterFS: the tenant's volume.
    Gluster,
}

impl StorageSystem {
    /// The system's name, as specs write it and as its URLs' scheme.
    pub fn as_str(self) -> &'static str {
        match self {
            StorageSystem::Seaweedfs => "seaweedfs",
            StorageSystem::Hdfs => "hdfs",
            StorageSystem::Gluster => "gluster",
        }
    }

    /// The system whose URLs have `scheme`.
    pub fn from_scheme(scheme: &str) -> Option<StorageSystem> {
        match scheme {
            "seaweedfs" => Some(StorageSystem::Seaweedfs),
            "hdfs" => Some(StorageSystem::Hdfs),
            "gluster" => Some(StorageSystem::Gluster),
            _ => None,
        }
    }

    /// The system a URL names by its scheme, if it is one of these.
    pub fn of_url(url: &str) -> Option<StorageSystem> {
        url.split_once("://")
            .and_then(|(scheme, _)| StorageSystem::from_scheme(scheme))
    }
}

impl fmt::Display for StorageSystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Volume {
    /// A volume of the tenant's `store` at `path` (its root for `""`), mounted at `mount_path`.
    pub fn of_store(name: &str, store: StorageSystem, path: &str, mount_path: &str) -> Volume {
        Volume {
            name: name.to_string(),
            store: Some(store),
            path: (!path.is_empty()).then(|| path.to_string()),
            url: None,
            mount_path: mount_path.to_string(),
            read_only: false,
            cached: false,
        }
    }

    /// A volume at `url`, mounted at `mount_path`.
    pub fn of_url(name: &str, url: &str, mount_path: &str) -> Volume {
        Volume {
            name: name.to_string(),
            store: None,
            path: None,
            url: Some(url.to_string()),
            mount_path: mount_path.to_string(),
            read_only: false,
            cached: false,
        }
    }

    /// The system the volume is on, from its `store` or its URL's scheme.
    pub fn system(&self) -> Option<StorageSystem> {
        self.store
            .or_else(|| self.url.as_deref().and_then(StorageSystem::of_url))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use crate::spec::{check_volumes_of_tenant, job_from_yaml, tenant_from_yaml};

    const JOB: &str = "name: train\ntenant: vision\nframework: custom\n\
        roles: [{name: worker, command: [python, train.py]}]\n\
        volumes:\n\
        - {name: train-data, store: seaweedfs, path: datasets/mnist, mountPath: /data, readOnly: true}\n\
        - {name: raw, url: 'hdfs://namenode:8020/tenants/vision/raw', mountPath: /raw, readOnly: true, cached: true}\n";

    #[test]
    fn a_job_reads_its_volumes_in_both_forms() {
        let job = job_from_yaml(JOB).unwrap();
        let mut data = Volume::of_store(
            "train-data",
            StorageSystem::Seaweedfs,
            "datasets/mnist",
            "/data",
        );
        data.read_only = true;
        let mut raw = Volume::of_url("raw", "hdfs://namenode:8020/tenants/vision/raw", "/raw");
        raw.read_only = true;
        raw.cached = true;
        assert_eq!(job.volumes, [data, raw]);
        assert_eq!(job.volumes[1].system(), Some(StorageSystem::Hdfs));
    }

    #[test]
    fn a_volume_on_a_system_the_tenant_lacks_is_refused_at_its_field() {
        let job = job_from_yaml(JOB).unwrap();
        let both = tenant_from_yaml("name: vision\nstorage: {seaweedfs: {}, hdfs: {}}").unwrap();
        check_volumes_of_tenant(&job, &both).unwrap();
        let seaweedfs_only = tenant_from_yaml("name: vision\nstorage: {seaweedfs: {}}").unwrap();
        match check_volumes_of_tenant(&job, &seaweedfs_only) {
            Err(Error::InvalidSpec {
                kind: "job",
                errors,
            }) => assert_eq!(
                errors.0.iter().map(ToString::to_string).collect::<Vec<_>>(),
                [
                    "volumes[1].url: tenant \"vision\" has no hdfs storage (its spec's storage \
                     gives seaweedfs)"
                ]
            ),
            other => panic!("not refused: {other:?}"),
        }
    }
}

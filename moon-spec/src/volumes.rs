//! A job's volumes once they are resolved against the platform's storage servers, and the
//! variables that tell a replica where each one is.
//!
//! Resolving needs the servers' addresses, so it happens in `moon-core` when a job is
//! submitted; what is resolved is plain data, which both backends turn into mounts and
//! variables the same way.
//!
//! ```
//! use moon_spec::spec::StorageSystem;
//! use moon_spec::volumes::{ResolvedVolume, path_variable, url_variable};
//!
//! assert_eq!(url_variable("train-data"), "MOON_VOLUME_TRAIN_DATA");
//! assert_eq!(path_variable("train-data"), "MOON_VOLUME_TRAIN_DATA_PATH");
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::spec::{Job, StorageSystem};

/// The prefix of every volume's variables.
pub const VARIABLE_PREFIX: &str = "MOON_VOLUME_";

/// One volume of a job, resolved: which system, the URL of its directory, and that
/// directory relative to the tenant's part of the system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResolvedVolume {
    /// The volume's name in the job.
    pub name: String,
    /// The system it is on.
    pub system: StorageSystem,
    /// The URL of its directory, as `moon.storage.open` takes it; it never holds a credential.
    pub url: String,
    /// Its directory below the tenant's own (`datasets/mnist`), empty for the tenant's
    /// directory itself: the sub-path of the tenant's claim on Kubernetes.
    pub path: String,
    /// Where replicas see it on Kubernetes.
    pub mount_path: String,
    /// Whether replicas may only read it.
    pub read_only: bool,
    /// Whether reads go through a cache.
    pub cached: bool,
}

/// Checks that `volumes` are `job`'s own, resolved: one for each volume of the spec, in order.
pub fn check_resolved(job: &Job, volumes: &[ResolvedVolume]) -> Result<()> {
    let same = job.volumes.len() == volumes.len()
        && job
            .volumes
            .iter()
            .zip(volumes)
            .all(|(spec, resolved)| spec.name == resolved.name);
    if same {
        Ok(())
    } else {
        Err(Error::NotSupported(format!(
            "job {}/{}: its volumes are resolved against the platform's storage servers when \
             it is submitted through moon's client, which was not done here",
            job.tenant, job.name
        )))
    }
}

/// `MOON_VOLUME_<NAME>`: upper case, `-` as `_`.
pub fn url_variable(name: &str) -> String {
    format!(
        "{VARIABLE_PREFIX}{}",
        name.to_ascii_uppercase().replace('-', "_")
    )
}

/// `MOON_VOLUME_<NAME>_PATH`.
pub fn path_variable(name: &str) -> String {
    format!("{}_PATH", url_variable(name))
}

/// The variables of every replica of a job with `volumes`: each volume's URL, and where it is
/// mounted for those `mounted_at` places (a volume that is not mounted has no `_PATH`).
pub fn replica_env<'a>(
    volumes: &'a [ResolvedVolume],
    mounted_at: impl Fn(&'a ResolvedVolume) -> Option<String>,
) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for volume in volumes {
        env.insert(url_variable(&volume.name), volume.url.clone());
        if let Some(place) = mounted_at(volume) {
            env.insert(path_variable(&volume.name), place);
        }
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    fn volume(name: &str, system: StorageSystem) -> ResolvedVolume {
        ResolvedVolume {
            name: name.into(),
            system,
            url: format!("{system}://server/tenants/vision/{name}"),
            path: name.into(),
            mount_path: format!("/{name}"),
            read_only: false,
            cached: false,
        }
    }

    #[test]
    fn every_volume_has_its_url_and_only_a_mounted_one_its_path() {
        let volumes = [
            volume("train-data", StorageSystem::Seaweedfs),
            volume("raw", StorageSystem::Hdfs),
        ];
        let env = replica_env(&volumes, |volume| {
            (volume.system != StorageSystem::Hdfs).then(|| volume.mount_path.clone())
        });
        assert_eq!(
            env,
            BTreeMap::from([
                (
                    "MOON_VOLUME_RAW".to_string(),
                    "hdfs://server/tenants/vision/raw".to_string()
                ),
                (
                    "MOON_VOLUME_TRAIN_DATA".to_string(),
                    "seaweedfs://server/tenants/vision/train-data".to_string()
                ),
                (
                    "MOON_VOLUME_TRAIN_DATA_PATH".to_string(),
                    "/train-data".to_string()
                ),
            ])
        );
    }
}

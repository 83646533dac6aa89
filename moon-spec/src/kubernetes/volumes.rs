//! A job's volumes in its replicas' pods: each one mounted from its tenant's claim (the
//! tenant's storage objects, [`super::storage`]), at the volume's directory in it.
//!
//! | system | the pod mounts |
//! |---|---|
//! | SeaweedFS | the tenant's claim [`SEAWEEDFS_CLAIM`], sub-path the volume's directory |
//! | Gluster | the tenant's claim [`GLUSTER_CLAIM`], sub-path the volume's directory |
//! | HDFS, cached | Fluid's claim of the tenant's Dataset [`HDFS_DATASET`], sub-path the Dataset's mount and the directory |
//! | HDFS | nothing: replicas reach the namenode at `MOON_VOLUME_<NAME>` |

use k8s_openapi::api::core::v1 as core;

use super::storage::{GLUSTER_CLAIM, HDFS_DATASET, HDFS_DATASET_MOUNT, SEAWEEDFS_CLAIM};
use crate::spec::StorageSystem;
use crate::volumes::ResolvedVolume;

/// The prefix of a volume's name in the pod, which keeps it apart from moon's own (`dshm`).
const POD_VOLUME_PREFIX: &str = "volume-";

/// The claim a volume is mounted from, and the sub-path in it; `None` for a volume that is
/// not mounted.
pub fn claim_of(volume: &ResolvedVolume) -> Option<(&'static str, String)> {
    let (claim, sub_path) = match (volume.system, volume.cached) {
        (StorageSystem::Seaweedfs, _) => (SEAWEEDFS_CLAIM, volume.path.clone()),
        (StorageSystem::Gluster, _) => (GLUSTER_CLAIM, volume.path.clone()),
        (StorageSystem::Hdfs, true) => {
            // Fluid serves each of a Dataset's mounts in a directory named after it.
            let below = match volume.path.as_str() {
                "" => HDFS_DATASET_MOUNT.to_string(),
                path => format!("{HDFS_DATASET_MOUNT}/{path}"),
            };
            (HDFS_DATASET, below)
        }
        (StorageSystem::Hdfs, false) => return None,
    };
    Some((claim, sub_path))
}

/// The pod's volumes and the container's mounts for `volumes`.
pub fn pod_volumes(volumes: &[ResolvedVolume]) -> (Vec<core::Volume>, Vec<core::VolumeMount>) {
    let mut pod = Vec::new();
    let mut mounts = Vec::new();
    for volume in volumes {
        let Some((claim, sub_path)) = claim_of(volume) else {
            continue;
        };
        let name = format!("{POD_VOLUME_PREFIX}{}", volume.name);
        let read_only = volume.read_only.then_some(true);
        pod.push(core::Volume {
            name: name.clone(),
            persistent_volume_claim: Some(core::PersistentVolumeClaimVolumeSource {
                claim_name: claim.to_string(),
                read_only,
            }),
            ..core::Volume::default()
        });
        mounts.push(core::VolumeMount {
            name,
            mount_path: volume.mount_path.clone(),
            sub_path: (!sub_path.is_empty()).then_some(sub_path),
            read_only,
            ..core::VolumeMount::default()
        });
    }
    (pod, mounts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn volume(system: StorageSystem, path: &str, cached: bool) -> ResolvedVolume {
        ResolvedVolume {
            name: "data".into(),
            system,
            url: format!("{system}://server/tenants/vision/{path}"),
            path: path.into(),
            mount_path: "/data".into(),
            read_only: cached,
            cached,
        }
    }

    #[test]
    fn each_system_mounts_from_its_claim_or_not_at_all() {
        let claims = [
            volume(StorageSystem::Seaweedfs, "datasets/mnist", false),
            volume(StorageSystem::Gluster, "", false),
            volume(StorageSystem::Hdfs, "raw", true),
            volume(StorageSystem::Hdfs, "", true),
            volume(StorageSystem::Hdfs, "raw", false),
        ]
        .iter()
        .map(claim_of)
        .collect::<Vec<_>>();
        assert_eq!(
            claims,
            [
                Some((SEAWEEDFS_CLAIM, "datasets/mnist".to_string())),
                Some((GLUSTER_CLAIM, String::new())),
                Some((HDFS_DATASET, format!("{HDFS_DATASET_MOUNT}/raw"))),
                Some((HDFS_DATASET, HDFS_DATASET_MOUNT.to_string())),
                None,
            ]
        );
    }
}

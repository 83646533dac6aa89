//! What every object moon renders shares: its labels, its metadata, and
//! quantities written as Kubernetes writes them.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ResourceRequirements, Toleration};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as KubeQuantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::error::{Error, Result, rule};
use crate::spec::{Quantity, format_bytes};

/// The label every object moon makes carries, set to [`MANAGER`].
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// The value of [`MANAGED_BY_LABEL`].
pub const MANAGER: &str = "moon";
/// The tenant an object belongs to.
pub const TENANT_LABEL: &str = "moon.dev/tenant";
/// The label that ties a service's pods to its Deployment and its Service
/// (and that exposing a service to other tenants selects).
pub const SERVICE_LABEL: &str = "moon.dev/service";
/// The job an object belongs to; the headless Service selects on it.
pub const JOB_LABEL: &str = "moon.dev/job";
/// The role of a replica's Job and pod.
pub const ROLE_LABEL: &str = "moon.dev/role";
/// The index of a replica's Job and pod within its role.
pub const REPLICA_INDEX_LABEL: &str = "moon.dev/replica-index";
/// On a job's anchor: when it was submitted, in milliseconds since the
/// epoch by the submitting client's clock. The cluster counts creation
/// times in whole seconds, too coarse to tell apart the jobs of one second;
/// the submitting client writes it, as rendering knows no clock.
pub const SUBMITTED_ANNOTATION: &str = "moon.dev/submitted-ms";

/// The longest name Kubernetes gives a pod's hostname or a Job (whose name
/// becomes a label value of its pods).
pub(crate) const MAX_NAME_LEN: usize = 63;

/// Metadata of an object moon makes in `namespace` (none for a Namespace).
pub(crate) fn meta(
    name: &str,
    namespace: Option<&str>,
    labels: &BTreeMap<String, String>,
) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: namespace.map(str::to_string),
        labels: Some(labels.clone()),
        ..ObjectMeta::default()
    }
}

/// The user's labels, then moon's, which win: moon finds its objects by them.
pub(crate) fn labels(
    user: &BTreeMap<String, String>,
    moon: &[(&str, &str)],
) -> BTreeMap<String, String> {
    let mut labels = user.clone();
    labels.insert(MANAGED_BY_LABEL.to_string(), MANAGER.to_string());
    for (key, value) in moon {
        labels.insert(key.to_string(), value.to_string());
    }
    labels
}

/// The extended resource of NVIDIA's device plugin: a container's GPUs.
pub(crate) const GPU_RESOURCE: &str = "nvidia.com/gpu";

/// A container's CPUs and memory, requested and limited alike so that it is not throttled or
/// evicted for using what it asked for, and `gpus` GPUs (extended resources are requested
/// through their limit). `at` prefixes the spec paths errors name (`roles[0].`, or ``).
pub(crate) fn container_resources(
    cpus: &Quantity,
    memory: &Quantity,
    gpus: u64,
    kind: &'static str,
    at: &str,
) -> Result<ResourceRequirements> {
    let mut limits = BTreeMap::from([
        (
            "cpu".to_string(),
            cpu_quantity(cpus, kind, &format!("{at}cpus"))?,
        ),
        (
            "memory".to_string(),
            memory_quantity(memory, kind, &format!("{at}memory"))?,
        ),
    ]);
    let requests = limits.clone();
    if gpus > 0 {
        limits.insert(GPU_RESOURCE.to_string(), KubeQuantity(gpus.to_string()));
    }
    Ok(ResourceRequirements {
        requests: Some(requests),
        limits: Some(limits),
        ..ResourceRequirements::default()
    })
}

/// The tolerations of a pod: the GPU nodes' taint when it asks for GPUs, then `extra`.
pub(crate) fn pod_tolerations(gpus: u64, extra: &[Toleration]) -> Option<Vec<Toleration>> {
    let mut tolerations = Vec::new();
    if gpus > 0 {
        tolerations.push(Toleration {
            key: Some(GPU_RESOURCE.to_string()),
            operator: Some("Exists".to_string()),
            effect: Some("NoSchedule".to_string()),
            ..Toleration::default()
        });
    }
    tolerations.extend(extra.iter().cloned());
    (!tolerations.is_empty()).then_some(tolerations)
}

/// CPUs as Kubernetes writes them: `2`, `500m`.
pub(crate) fn cpu_quantity(
    cpus: &Quantity,
    kind: &'static str,
    path: &str,
) -> Result<KubeQuantity> {
    let millicores = cpus
        .millicores()
        .map_err(|problem| Error::invalid(kind, path, rule::FORMAT, problem))?;
    Ok(KubeQuantity(if millicores % 1000 == 0 {
        (millicores / 1000).to_string()
    } else {
        format!("{millicores}m")
    }))
}

/// Memory in the unit, binary or decimal, that writes it shortest: `8Gi`,
/// `1536Mi`, `2G` (rather than `1953125Ki`).
pub(crate) fn memory_quantity(
    memory: &Quantity,
    kind: &'static str,
    path: &str,
) -> Result<KubeQuantity> {
    const DECIMAL: [(&str, u64); 5] = [
        ("P", 1_000_000_000_000_000),
        ("T", 1_000_000_000_000),
        ("G", 1_000_000_000),
        ("M", 1_000_000),
        ("k", 1_000),
    ];
    let bytes = memory
        .bytes()
        .map_err(|problem| Error::invalid(kind, path, rule::FORMAT, problem))?;
    let decimal = DECIMAL
        .iter()
        .find(|(_, size)| bytes >= *size && bytes % size == 0)
        .map(|(unit, size)| format!("{}{unit}", bytes / size));
    let binary = format_bytes(bytes);
    Ok(KubeQuantity(match decimal {
        Some(decimal) if decimal.len() < binary.len() => decimal,
        _ => binary,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_are_written_as_kubernetes_writes_them() {
        let cpu = |q: Quantity| cpu_quantity(&q, "job", "cpus").unwrap().0;
        assert_eq!(cpu(Quantity::Int(2)), "2");
        assert_eq!(cpu(Quantity::Float(0.5)), "500m");
        assert_eq!(cpu("1500m".into()), "1500m");
        let memory = |q: Quantity| memory_quantity(&q, "job", "memory").unwrap().0;
        assert_eq!(memory("8Gi".into()), "8Gi");
        assert_eq!(memory("1.5Gi".into()), "1536Mi");
        assert_eq!(memory("2G".into()), "2G");
        assert_eq!(memory("1e3".into()), "1k");
        assert_eq!(memory(Quantity::Int(1024)), "1Ki");
        assert_eq!(memory(Quantity::Int(1500)), "1500");
        assert!(matches!(
            cpu_quantity(&"two".into(), "job", "roles[0].cpus"),
            Err(Error::InvalidSpec { kind: "job", .. })
        ));
    }

    #[test]
    fn moon_labels_win_over_the_users() {
        let user = BTreeMap::from([
            (JOB_LABEL.to_string(), "other".to_string()),
            ("team".to_string(), "vision".to_string()),
        ]);
        let labels = labels(&user, &[(JOB_LABEL, "mnist")]);
        assert_eq!(labels[JOB_LABEL], "mnist");
        assert_eq!(labels["team"], "vision");
        assert_eq!(labels[MANAGED_BY_LABEL], MANAGER);
    }
}

//! A service's status from what the cluster holds of it: its Deployment (the replica count
//! it should have, and the ReplicaSet controller's complaints, a quota's most often), its
//! pods (each replica's phase and restarts), and the EndpointSlices of its Service (which
//! replicas take requests, at which address: what a client of the Service reaches). Plain
//! data in, plain data out, so that it is tested without a cluster.

use k8s_openapi::api::apps::v1 as apps;
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::discovery::v1 as discovery;

use super::service::{HTTP_PORT, SERVER};
use crate::status::{Phase, ReplicaPhase, ServiceReplicaStatus, ServiceStatus};

/// What the cluster holds of one service.
#[derive(Debug, Clone, Default)]
pub struct ObservedService {
    /// Its Deployment.
    pub deployment: apps::Deployment,
    /// Its pods (those of the Deployment's selector), any order.
    pub pods: Vec<core::Pod>,
    /// The EndpointSlices of its Service.
    pub slices: Vec<discovery::EndpointSlice>,
}

/// The status of the service `observed` holds.
pub fn derive_service(observed: &ObservedService) -> ServiceStatus {
    let deployment = &observed.deployment;
    let meta = &deployment.metadata;
    let tenant = meta.namespace.clone().unwrap_or_default();
    let name = meta.name.clone().unwrap_or_default();
    let spec = deployment.spec.as_ref();
    let port = spec.and_then(|spec| served_port(&spec.template));
    let ready_addresses = ready_endpoints(&observed.slices);

    let mut pods: Vec<&core::Pod> = observed
        .pods
        .iter()
        .filter(|pod| pod.metadata.deletion_timestamp.is_none())
        .collect();
    pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let replicas: Vec<ServiceReplicaStatus> = pods
        .into_iter()
        .map(|pod| replica(pod, port, &ready_addresses))
        .collect();

    // The ReplicaSet controller's complaint about pods it could not create.
    let failure = deployment
        .status
        .as_ref()
        .and_then(|status| status.conditions.as_ref())
        .and_then(|conditions| {
            conditions
                .iter()
                .find(|c| c.type_ == "ReplicaFailure" && c.status == "True")
        });
    let (reason, message) = match failure {
        Some(condition) => (
            Some(
                if condition
                    .message
                    .as_deref()
                    .is_some_and(|m| m.contains("exceeded quota"))
                {
                    "Quota".to_string()
                } else {
                    condition
                        .reason
                        .clone()
                        .unwrap_or_else(|| "ReplicaFailure".to_string())
                },
            ),
            condition.message.clone(),
        ),
        None => (None, None),
    };
    let ready = replicas.iter().filter(|replica| replica.ready).count() as u32;
    let phase = if failure.is_some() && ready == 0 {
        Phase::Pending
    } else {
        Phase::Running
    };
    ServiceStatus {
        url: port.map(|port| format!("http://{name}.{tenant}.svc:{port}")),
        desired_replicas: spec
            .and_then(|spec| spec.replicas)
            .map_or(1, |n| n.max(0) as u32),
        ready_replicas: ready,
        created_ms: meta
            .creation_timestamp
            .as_ref()
            .map_or(0, |time| time.0.as_millisecond()),
        tenant,
        name,
        phase,
        reason,
        message,
        replicas,
    }
}

/// The port the server container serves on, by its name.
fn served_port(template: &core::PodTemplateSpec) -> Option<u16> {
    let containers = &template.spec.as_ref()?.containers;
    let server = containers.iter().find(|c| c.name == SERVER)?;
    let port = server
        .ports
        .as_ref()?
        .iter()
        .find(|port| port.name.as_deref() == Some(HTTP_PORT))?;
    u16::try_from(port.container_port).ok()
}

/// The pods the slices list as ready, by name, with the address they are reached at.
fn ready_endpoints(slices: &[discovery::EndpointSlice]) -> Vec<(String, String)> {
    let mut ready = Vec::new();
    for slice in slices {
        for endpoint in &slice.endpoints {
            let is_ready = endpoint
                .conditions
                .as_ref()
                .and_then(|conditions| conditions.ready)
                .unwrap_or(true);
            let pod = endpoint
                .target_ref
                .as_ref()
                .filter(|target| target.kind.as_deref() == Some("Pod"))
                .and_then(|target| target.name.clone());
            if let (true, Some(pod), Some(address)) = (is_ready, pod, endpoint.addresses.first()) {
                ready.push((pod, address.clone()));
            }
        }
    }
    ready
}

fn replica(
    pod: &core::Pod,
    port: Option<u16>,
    ready_addresses: &[(String, String)],
) -> ServiceReplicaStatus {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let status = pod.status.as_ref();
    let phase = match status.and_then(|s| s.phase.as_deref()) {
        Some("Running") => ReplicaPhase::Running,
        Some("Succeeded") => ReplicaPhase::Succeeded,
        Some("Failed") => ReplicaPhase::Failed,
        _ => ReplicaPhase::Pending,
    };
    let restarts: i32 = status
        .and_then(|s| s.container_statuses.as_ref())
        .map_or(0, |containers| {
            containers.iter().map(|c| c.restart_count).sum()
        });
    let endpoint = ready_addresses.iter().find(|(pod, _)| *pod == name);
    let address = endpoint
        .map(|(_, address)| address.clone())
        .or_else(|| status.and_then(|s| s.pod_ip.clone()))
        .zip(port)
        .map(|(ip, port)| format!("{ip}:{port}"));
    ServiceReplicaStatus {
        ready: endpoint.is_some(),
        address,
        attempts: 1 + restarts.max(0) as u32,
        in_flight: 0,
        requests: 0,
        phase,
        name,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn from<T: serde::de::DeserializeOwned>(value: Value) -> T {
        serde_json::from_value(value).expect("a valid object")
    }

    fn deployment(replicas: i32, conditions: Value) -> apps::Deployment {
        from(json!({
            "metadata": {"name": "mnist", "namespace": "vision",
                         "creationTimestamp": "2025-03-01T12:00:00Z"},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"moon.dev/service": "mnist"}},
                "template": {"spec": {"containers": [{
                    "name": "server",
                    "ports": [{"name": "http", "containerPort": 8080}],
                }]}},
            },
            "status": {"conditions": conditions},
        }))
    }

    fn pod(name: &str, phase: &str, ip: Option<&str>, restarts: i32) -> core::Pod {
        from(json!({
            "metadata": {"name": name, "namespace": "vision"},
            "status": {"phase": phase, "podIP": ip,
                       "containerStatuses": [{"name": "server", "restartCount": restarts,
                                              "ready": true, "image": "i", "imageID": ""}]},
        }))
    }

    fn slice(endpoints: Value) -> discovery::EndpointSlice {
        from(json!({
            "metadata": {"name": "mnist-abcde", "namespace": "vision"},
            "addressType": "IPv4",
            "endpoints": endpoints,
        }))
    }

    #[test]
    fn replicas_are_ready_as_the_endpoint_slices_say_at_their_addresses() {
        let observed = ObservedService {
            deployment: deployment(3, json!([])),
            pods: vec![
                pod("mnist-7d9-b", "Running", Some("10.0.0.8"), 0),
                pod("mnist-7d9-a", "Running", Some("10.0.0.7"), 2),
                pod("mnist-7d9-c", "Pending", None, 0),
            ],
            slices: vec![slice(json!([
                {"addresses": ["10.0.0.7"], "conditions": {"ready": true},
                 "targetRef": {"kind": "Pod", "name": "mnist-7d9-a"}},
                {"addresses": ["10.0.0.8"], "conditions": {"ready": false},
                 "targetRef": {"kind": "Pod", "name": "mnist-7d9-b"}},
            ]))],
        };
        let status = derive_service(&observed);
        assert_eq!(status.key(), "vision/mnist");
        assert_eq!(status.phase, Phase::Running);
        assert_eq!(status.url.as_deref(), Some("http://mnist.vision.svc:8080"));
        assert_eq!((status.desired_replicas, status.ready_replicas), (3, 1));
        assert_eq!(status.created_ms, 1_740_830_400_000);
        let seen: Vec<_> = status
            .replicas
            .iter()
            .map(|r| {
                (
                    r.name.as_str(),
                    r.phase,
                    r.ready,
                    r.address.as_deref(),
                    r.attempts,
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                (
                    "mnist-7d9-a",
                    ReplicaPhase::Running,
                    true,
                    Some("10.0.0.7:8080"),
                    3
                ),
                (
                    "mnist-7d9-b",
                    ReplicaPhase::Running,
                    false,
                    Some("10.0.0.8:8080"),
                    1
                ),
                ("mnist-7d9-c", ReplicaPhase::Pending, false, None, 1),
            ]
        );
    }

    #[test]
    fn pods_refused_by_the_quota_hold_the_service_pending_with_the_quotas_words() {
        let message = "pods \"mnist-7d9-x\" is forbidden: exceeded quota: moon-quota, \
                       requested: requests.nvidia.com/gpu=1, used: requests.nvidia.com/gpu=2, \
                       limited: requests.nvidia.com/gpu=2";
        let observed = ObservedService {
            deployment: deployment(
                1,
                json!([{"type": "ReplicaFailure", "status": "True",
                        "reason": "FailedCreate", "message": message}]),
            ),
            ..ObservedService::default()
        };
        let status = derive_service(&observed);
        assert_eq!(status.phase, Phase::Pending);
        assert_eq!(status.reason.as_deref(), Some("Quota"));
        assert_eq!(status.message.as_deref(), Some(message));
        assert!(status.replicas.is_empty());
    }

    #[test]
    fn an_autoscaled_deployment_without_a_count_yet_has_one_and_ending_pods_are_left_out() {
        let mut observed = ObservedService {
            deployment: deployment(1, json!([])),
            pods: vec![pod("mnist-7d9-a", "Running", Some("10.0.0.7"), 0)],
            slices: Vec::new(),
        };
        observed.deployment.spec.as_mut().unwrap().replicas = None;
        observed.pods[0].metadata.deletion_timestamp =
            observed.deployment.metadata.creation_timestamp.clone();
        let status = derive_service(&observed);
        assert_eq!(status.desired_replicas, 1);
        assert!(status.replicas.is_empty());
    }
}

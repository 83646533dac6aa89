//! An inference service as Kubernetes objects: a Deployment of its replicas, a Service in
//! front of them, and as the spec asks a PodDisruptionBudget, a HorizontalPodAutoscaler (or a
//! KEDA ScaledObject, which can scale to zero) and an Ingress. The module docs of
//! [`kubernetes`](super) list them.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1 as apps;
use k8s_openapi::api::autoscaling::v2 as autoscaling;
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::networking::v1 as networking;
use k8s_openapi::api::policy::v1 as policy;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as KubeQuantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::json;

use super::job::{RenderOptions, literal, secret_env_sources, template_meta};
use super::keda::ScaledObject;
use super::meta::{
    SERVICE_LABEL, TENANT_LABEL, container_resources, labels, meta, pod_tolerations,
};
use super::object::Object;
use super::tenant::WORKLOAD_SERVICE_ACCOUNT;
use super::volumes;
use crate::error::Result;
use crate::spec::{Autoscale, Service, validate_service};
use crate::volumes as job_volumes;

/// The name of a service's container and of the port it serves on.
pub const SERVER: &str = "server";
/// The port name the Service and the Ingress route to.
pub const HTTP_PORT: &str = "http";
/// The ingress class an exposed service's Ingress names.
pub const INGRESS_CLASS: &str = "nginx";
/// The per-pod metric a target of requests per second scales on, served to the
/// HorizontalPodAutoscaler by the cluster's custom-metrics adapter from moon's proxy metrics.
pub const REQUESTS_PER_SECOND_METRIC: &str = "moon_requests_per_second";
/// The per-pod metric a target of requests in flight scales on.
pub const IN_FLIGHT_METRIC: &str = "moon_requests_in_flight";
/// Where a ScaledObject's Prometheus trigger reads moon's metrics: the usual in-cluster address
/// of a Prometheus that scrapes the tenants' pods.
pub const PROMETHEUS_ADDRESS: &str = "http://prometheus.monitoring.svc:9090";

/// The objects `service` becomes, in the order they are applied.
pub fn render_service(service: &Service, options: &RenderOptions) -> Result<Vec<Object>> {
    validate_service(service)?;
    let labels = labels(
        &service.labels,
        &[
            (TENANT_LABEL, service.tenant.as_str()),
            (SERVICE_LABEL, service.name.as_str()),
        ],
    );
    let namespace = Some(service.tenant.as_str());
    let mut objects: Vec<Object> = vec![
        deployment(service, options, &labels)?.into(),
        core::Service {
            metadata: meta(&service.name, namespace, &labels),
            spec: Some(core::ServiceSpec {
                selector: Some(selector(service)),
                ports: Some(vec![core::ServicePort {
                    name: Some(HTTP_PORT.to_string()),
                    port: i32::from(service.port),
                    target_port: Some(IntOrString::String(HTTP_PORT.to_string())),
                    protocol: Some("TCP".to_string()),
                    ..core::ServicePort::default()
                }]),
                ..core::ServiceSpec::default()
            }),
            ..core::Service::default()
        }
        .into(),
    ];
    let most = service
        .autoscale
        .as_ref()
        .map_or(service.replicas, |autoscale| autoscale.max_replicas);
    if most > 1 {
        // One replica at a time may be evicted (a node drain), so requests keep a home.
        objects.push(
            policy::PodDisruptionBudget {
                metadata: meta(&service.name, namespace, &labels),
                spec: Some(policy::PodDisruptionBudgetSpec {
                    max_unavailable: Some(IntOrString::Int(1)),
                    selector: Some(LabelSelector {
                        match_labels: Some(selector(service)),
                        ..LabelSelector::default()
                    }),
                    ..policy::PodDisruptionBudgetSpec::default()
                }),
                ..policy::PodDisruptionBudget::default()
            }
            .into(),
        );
    }
    match &service.autoscale {
        Some(autoscale) if autoscale.min_replicas == 0 => {
            objects.push(scaled_object(service, autoscale, &labels).into());
        }
        Some(autoscale) => objects.push(autoscaler(service, autoscale, &labels).into()),
        None => {}
    }
    if let Some(expose) = &service.expose {
        objects.push(
            networking::Ingress {
                metadata: meta(&service.name, namespace, &labels),
                spec: Some(networking::IngressSpec {
                    ingress_class_name: Some(INGRESS_CLASS.to_string()),
                    rules: Some(vec![networking::IngressRule {
                        host: expose.host.clone(),
                        http: Some(networking::HTTPIngressRuleValue {
                            paths: vec![networking::HTTPIngressPath {
                                path: Some(expose.path.clone()),
                                path_type: "Prefix".to_string(),
                                backend: networking::IngressBackend {
                                    service: Some(networking::IngressServiceBackend {
                                        name: service.name.clone(),
                                        port: Some(networking::ServiceBackendPort {
                                            name: Some(HTTP_PORT.to_string()),
                                            number: None,
                                        }),
                                    }),
                                    resource: None,
                                },
                            }],
                        }),
                    }]),
                    ..networking::IngressSpec::default()
                }),
                ..networking::Ingress::default()
            }
            .into(),
        );
    }
    Ok(objects)
}

/// The labels a service's pods are found by.
fn selector(service: &Service) -> BTreeMap<String, String> {
    BTreeMap::from([(SERVICE_LABEL.to_string(), service.name.clone())])
}

/// The replicas: a rolling update that adds one before it takes one away, so capacity never
/// dips; with an autoscaler the replica count is left to it (an applied count would undo its
/// decisions at every apply).
fn deployment(
    service: &Service,
    options: &RenderOptions,
    labels: &BTreeMap<String, String>,
) -> Result<apps::Deployment> {
    let gpus = service.gpus.count();
    let image = service.image.as_deref().unwrap_or(&options.image);
    let (pod_volumes, mounts) = volumes::pod_volumes(&options.volumes);
    let mut env = service.env.clone();
    env.extend(job_volumes::replica_env(&options.volumes, |volume| {
        volumes::claim_of(volume).map(|_| volume.mount_path.clone())
    }));
    env.insert("PORT".to_string(), service.port.to_string());
    let container = core::Container {
        name: SERVER.to_string(),
        image: Some(image.to_string()),
        command: (!service.command.is_empty())
            .then(|| service.command.iter().map(|part| literal(part)).collect()),
        args: (!service.args.is_empty())
            .then(|| service.args.iter().map(|arg| literal(arg)).collect()),
        working_dir: service.working_dir.clone(),
        env: Some(
            env.into_iter()
                .map(|(name, value)| core::EnvVar {
                    name,
                    value: Some(literal(&value)),
                    ..core::EnvVar::default()
                })
                .collect(),
        ),
        env_from: secret_env_sources(&service.env_from),
        ports: Some(vec![core::ContainerPort {
            name: Some(HTTP_PORT.to_string()),
            container_port: i32::from(service.port),
            protocol: Some("TCP".to_string()),
            ..core::ContainerPort::default()
        }]),
        readiness_probe: Some(readiness_probe(service)),
        resources: Some(container_resources(
            &service.cpus,
            &service.memory,
            gpus,
            "service",
            "",
        )?),
        volume_mounts: (!mounts.is_empty()).then_some(mounts),
        ..core::Container::default()
    };
    let pod = core::PodSpec {
        service_account_name: Some(WORKLOAD_SERVICE_ACCOUNT.to_string()),
        // As for jobs: a replica's environment is its spec's and moon's, nothing else.
        enable_service_links: Some(false),
        containers: vec![container],
        tolerations: pod_tolerations(gpus, &options.tolerations),
        affinity: service.gpus.selector().and_then(super::gpu::node_affinity),
        node_selector: (!options.node_selector.is_empty()).then(|| options.node_selector.clone()),
        volumes: (!pod_volumes.is_empty()).then_some(pod_volumes),
        ..core::PodSpec::default()
    };
    Ok(apps::Deployment {
        metadata: meta(&service.name, Some(&service.tenant), labels),
        spec: Some(apps::DeploymentSpec {
            replicas: service
                .autoscale
                .is_none()
                .then(|| i32::try_from(service.replicas).unwrap_or(i32::MAX)),
            selector: LabelSelector {
                match_labels: Some(selector(service)),
                ..LabelSelector::default()
            },
            strategy: Some(apps::DeploymentStrategy {
                type_: Some("RollingUpdate".to_string()),
                rolling_update: Some(apps::RollingUpdateDeployment {
                    max_surge: Some(IntOrString::Int(1)),
                    max_unavailable: Some(IntOrString::Int(0)),
                }),
            }),
            template: core::PodTemplateSpec {
                metadata: Some(template_meta(labels)),
                spec: Some(pod),
            },
            ..apps::DeploymentSpec::default()
        }),
        ..apps::Deployment::default()
    })
}

/// The spec's readiness probe on the `http` port: an HTTP `GET` or a TCP connect.
fn readiness_probe(service: &Service) -> core::Probe {
    let readiness = service.readiness_or_default();
    let port = IntOrString::String(HTTP_PORT.to_string());
    let (http_get, tcp_socket) = match &readiness.http_path {
        Some(path) => (
            Some(core::HTTPGetAction {
                path: Some(path.clone()),
                port,
                ..core::HTTPGetAction::default()
            }),
            None,
        ),
        None => (
            None,
            Some(core::TCPSocketAction {
                port,
                ..core::TCPSocketAction::default()
            }),
        ),
    };
    let seconds = |value: u32| Some(i32::try_from(value).unwrap_or(i32::MAX));
    core::Probe {
        http_get,
        tcp_socket,
        period_seconds: seconds(readiness.period_seconds),
        timeout_seconds: seconds(readiness.timeout_seconds),
        failure_threshold: seconds(readiness.failure_threshold),
        ..core::Probe::default()
    }
}

/// The per-pod metric and its target the spec scales on.
fn target(autoscale: &Autoscale) -> (&'static str, f64) {
    match (
        autoscale.target_requests_per_second,
        autoscale.target_in_flight,
    ) {
        (Some(rate), _) => (REQUESTS_PER_SECOND_METRIC, rate),
        (None, Some(in_flight)) => (IN_FLIGHT_METRIC, in_flight),
        // validate_service requires exactly one.
        (None, None) => (IN_FLIGHT_METRIC, 1.0),
    }
}

/// A target as a Kubernetes quantity: whole numbers as they are, others in thousandths.
fn quantity(value: f64) -> KubeQuantity {
    if value.fract() == 0.0 {
        KubeQuantity(format!("{value:.0}"))
    } else {
        KubeQuantity(format!("{:.0}m", value * 1000.0))
    }
}

fn autoscaler(
    service: &Service,
    autoscale: &Autoscale,
    labels: &BTreeMap<String, String>,
) -> autoscaling::HorizontalPodAutoscaler {
    let (metric, value) = target(autoscale);
    let window = |seconds: u32| autoscaling::HPAScalingRules {
        stabilization_window_seconds: Some(i32::try_from(seconds).unwrap_or(i32::MAX)),
        ..autoscaling::HPAScalingRules::default()
    };
    autoscaling::HorizontalPodAutoscaler {
        metadata: meta(&service.name, Some(&service.tenant), labels),
        spec: Some(autoscaling::HorizontalPodAutoscalerSpec {
            scale_target_ref: autoscaling::CrossVersionObjectReference {
                api_version: Some("apps/v1".to_string()),
                kind: "Deployment".to_string(),
                name: service.name.clone(),
            },
            min_replicas: Some(i32::try_from(autoscale.min_replicas).unwrap_or(i32::MAX)),
            max_replicas: i32::try_from(autoscale.max_replicas).unwrap_or(i32::MAX),
            metrics: Some(vec![autoscaling::MetricSpec {
                type_: "Pods".to_string(),
                pods: Some(autoscaling::PodsMetricSource {
                    metric: autoscaling::MetricIdentifier {
                        name: metric.to_string(),
                        selector: None,
                    },
                    target: autoscaling::MetricTarget {
                        type_: "AverageValue".to_string(),
                        average_value: Some(quantity(value)),
                        ..autoscaling::MetricTarget::default()
                    },
                }),
                ..autoscaling::MetricSpec::default()
            }]),
            behavior: Some(autoscaling::HorizontalPodAutoscalerBehavior {
                scale_up: Some(window(autoscale.scale_up_stabilization_seconds)),
                scale_down: Some(window(autoscale.scale_down_stabilization_seconds)),
            }),
        }),
        ..autoscaling::HorizontalPodAutoscaler::default()
    }
}

/// KEDA scales the Deployment from zero on a Prometheus query of moon's metrics for the
/// service's pods (the HorizontalPodAutoscaler cannot go below one), with the spec's windows.
fn scaled_object(
    service: &Service,
    autoscale: &Autoscale,
    labels: &BTreeMap<String, String>,
) -> ScaledObject {
    let (metric, value) = target(autoscale);
    let query = format!(
        "sum({metric}{{namespace=\"{}\",service=\"{}\"}})",
        service.tenant, service.name
    );
    ScaledObject {
        metadata: meta(&service.name, Some(&service.tenant), labels),
        spec: json!({
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": service.name},
            "minReplicaCount": autoscale.min_replicas,
            "maxReplicaCount": autoscale.max_replicas,
            "cooldownPeriod": autoscale.scale_down_stabilization_seconds,
            "advanced": {"horizontalPodAutoscalerConfig": {"behavior": {
                "scaleUp": {"stabilizationWindowSeconds": autoscale.scale_up_stabilization_seconds},
                "scaleDown": {"stabilizationWindowSeconds": autoscale.scale_down_stabilization_seconds},
            }}},
            "triggers": [{
                "type": "prometheus",
                "metricType": "AverageValue",
                "metadata": {
                    "serverAddress": PROMETHEUS_ADDRESS,
                    "query": query,
                    "threshold": quantity(value).0,
                    "activationThreshold": "0",
                },
            }],
        }),
    }
}

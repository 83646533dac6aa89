//! An inference service: identical replicas of one program, serving on a port behind moon's
//! balancer, ready when their probe says so, scaled by load.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

// A replica's defaults are a job role's.
use super::job::{default_memory, one, one_cpu};
use super::{
    EnvFrom, Framework, Gpus, Job, JobKind, Quantity, RestartPolicy, Role, ServiceKind, Volume,
};

/// A service's spec, as written in YAML or JSON or built in code.
///
/// ```yaml
/// kind: Service
/// name: mnist
/// tenant: vision
/// command: [python, serve.py]
/// port: 8080                  # replicas get PORT (the local backend picks a free one each)
/// replicas: 2
/// readiness: {httpPath: /healthz}
/// autoscale: {minReplicas: 0, maxReplicas: 8, targetInFlight: 4}
/// expose: {path: /v1/models/mnist, rpc: mnist}
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Service {
    /// `Service`: a service spec always names its kind.
    pub kind: ServiceKind,
    /// DNS label naming the service, unique within its tenant.
    pub name: String,
    /// The tenant whose quota the replicas count against.
    pub tenant: String,
    /// The program and its first arguments; on Kubernetes the image's entrypoint when left
    /// out (then `image` is required).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Further arguments appended to `command`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Environment added to what moon sets; moon's `PORT` wins.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Secrets of the tenant whose keys become the replicas' variables.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "super::mapping::each"
    )]
    pub env_from: Vec<EnvFrom>,
    /// Directory to start in; the submitter's directory when left out (local backend).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// The container image on Kubernetes (the local backend runs `command` on this machine).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The port replicas listen on, given to them as `PORT`; the local backend gives each
    /// replica a free port of its own instead.
    #[serde(default = "default_port")]
    pub port: u16,
    /// How many replicas run; with `autoscale`, how many run until the autoscaler decides.
    #[serde(default = "one")]
    pub replicas: u32,
    /// CPUs per replica, as a number or millicores (`"500m"`).
    #[serde(default = "one_cpu")]
    pub cpus: Quantity,
    /// Memory per replica (`"1Gi"`).
    #[serde(default = "default_memory")]
    pub memory: Quantity,
    /// GPUs per replica: a count of any model, or a selector (`"H100:2"`).
    #[serde(default)]
    pub gpus: Gpus,
    /// When a replica may take requests; a TCP connect to its port when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness: Option<Readiness>,
    /// Scaling by load; a fixed number of replicas when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscale: Option<Autoscale>,
    /// Where clients reach the service beyond its own URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expose: Option<Expose>,
    /// Directories of the tenant's storage that every replica sees (as jobs have them).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "super::mapping::each"
    )]
    pub volumes: Vec<Volume>,
    /// Free-form labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// How moon tells that a replica is ready: an HTTP `GET` of `httpPath` answering 2xx or 3xx,
/// or (`tcp: true`) a connection to its port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Readiness {
    /// The path to `GET` (`/healthz`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_path: Option<String>,
    /// A TCP connect instead of an HTTP request.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tcp: bool,
    /// Seconds between probes.
    #[serde(default = "default_period")]
    pub period_seconds: u32,
    /// Seconds a probe may take.
    #[serde(default = "default_probe_timeout")]
    pub timeout_seconds: u32,
    /// Probes in a row that must fail before a ready replica is taken out.
    #[serde(default = "default_failure_threshold")]
    pub failure_threshold: u32,
}

/// Scaling by load, with the HorizontalPodAutoscaler's rule: desired replicas =
/// ceil(current × observed / target), held within `[minReplicas, maxReplicas]` and smoothed by
/// the stabilization windows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Autoscale {
    /// Fewest replicas; 0 lets an idle service scale to zero (a request then waits while a
    /// replica starts).
    #[serde(default = "one")]
    pub min_replicas: u32,
    /// Most replicas.
    pub max_replicas: u32,
    /// Requests per second per replica to aim for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_requests_per_second: Option<f64>,
    /// Requests in flight per replica to aim for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_in_flight: Option<f64>,
    /// Seconds of recommendations a scale-up takes the lowest of (0: at once).
    #[serde(default)]
    pub scale_up_stabilization_seconds: u32,
    /// Seconds of recommendations a scale-down takes the highest of.
    #[serde(default = "default_scale_down_window")]
    pub scale_down_stabilization_seconds: u32,
}

/// Where clients reach a service: an HTTP host and path on the cluster's ingress (the local
/// proxy routes the path), and a name in the service registry for client-side balancing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Expose {
    /// The host name the ingress routes by; every host when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The path prefix routed to the service.
    #[serde(default = "root_path")]
    pub path: String,
    /// The name RPC clients look the service up by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpc: Option<String>,
}

/// The port a service listens on when its spec names none.
pub const DEFAULT_SERVICE_PORT: u16 = 8080;
/// The scale-down window when a spec names none: the HorizontalPodAutoscaler's 300 s.
pub const DEFAULT_SCALE_DOWN_WINDOW: u32 = 300;

fn default_port() -> u16 {
    DEFAULT_SERVICE_PORT
}

fn default_period() -> u32 {
    1
}

fn default_probe_timeout() -> u32 {
    1
}

fn default_failure_threshold() -> u32 {
    3
}

fn default_scale_down_window() -> u32 {
    DEFAULT_SCALE_DOWN_WINDOW
}

fn root_path() -> String {
    "/".to_string()
}

impl Default for Readiness {
    /// A TCP connect every second, out after 3 failures.
    fn default() -> Self {
        Readiness {
            http_path: None,
            tcp: true,
            period_seconds: default_period(),
            timeout_seconds: default_probe_timeout(),
            failure_threshold: default_failure_threshold(),
        }
    }
}

impl Default for Expose {
    fn default() -> Self {
        Expose {
            host: None,
            path: root_path(),
            rpc: None,
        }
    }
}

impl Service {
    /// A service running `command` with defaults for everything else.
    pub fn new(name: &str, tenant: &str, command: &[&str]) -> Self {
        Service {
            kind: ServiceKind::Service,
            name: name.to_string(),
            tenant: tenant.to_string(),
            command: command.iter().map(|part| part.to_string()).collect(),
            args: Vec::new(),
            env: BTreeMap::new(),
            env_from: Vec::new(),
            working_dir: None,
            image: None,
            port: DEFAULT_SERVICE_PORT,
            replicas: 1,
            cpus: one_cpu(),
            memory: default_memory(),
            gpus: Gpus::default(),
            readiness: None,
            autoscale: None,
            expose: None,
            volumes: Vec::new(),
            labels: BTreeMap::new(),
        }
    }

    /// The readiness probe in force: the spec's, or a TCP connect.
    pub fn readiness_or_default(&self) -> Readiness {
        self.readiness.clone().unwrap_or_default()
    }

    /// One replica as a job's role (named `replica`): its program, environment and resources,
    /// which supervisors, quota checks and renderers share with jobs.
    pub fn replica_role(&self) -> Role {
        Role {
            command: self.command.clone(),
            args: self.args.clone(),
            env: self.env.clone(),
            env_from: self.env_from.clone(),
            working_dir: self.working_dir.clone(),
            image: self.image.clone(),
            cpus: self.cpus.clone(),
            memory: self.memory.clone(),
            gpus: self.gpus.clone(),
            ..Role::new(REPLICA_ROLE, self.replicas, &[])
        }
    }
}

impl Service {
    /// The job whose one role runs `replicas` of the service's replicas on a backend that
    /// runs jobs (the local one): it shares their supervision, logs, events and quota. The
    /// backend restarts a service's replicas whenever they end, which no job policy says, so
    /// the policy here only keeps the job from failing on a replica's exit.
    pub fn replica_job(&self, replicas: u32) -> Job {
        Job {
            kind: JobKind::Job,
            name: self.name.clone(),
            tenant: self.tenant.clone(),
            framework: Framework::Custom,
            roles: vec![Role {
                replicas,
                ..self.replica_role()
            }],
            restart_policy: RestartPolicy::OnFailure,
            backoff_limit: u32::MAX,
            image: self.image.clone(),
            active_deadline_seconds: None,
            ttl_seconds_after_finished: None,
            volumes: self.volumes.clone(),
            labels: self.labels.clone(),
        }
    }
}

/// The name of a service's one role of replicas.
pub const REPLICA_ROLE: &str = "replica";

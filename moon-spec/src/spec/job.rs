//! A training job: roles of replicas run under one framework's rendezvous.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Framework, Gpus, JobKind, Quantity, Volume};

/// A job's spec, as written in YAML or JSON or built in code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Job {
    /// `Job`; optional in a spec file, always written.
    #[serde(default)]
    pub kind: JobKind,
    /// DNS label naming the job, unique within its tenant.
    pub name: String,
    /// The tenant whose quota the job counts against.
    pub tenant: String,
    /// The framework whose rendezvous moon wires up.
    pub framework: Framework,
    /// Groups of identical replicas (`master`, `worker`, `ps`, ...).
    #[serde(deserialize_with = "super::mapping::each")]
    pub roles: Vec<Role>,
    /// Whether a replica that exits non-zero is started again.
    #[serde(default)]
    pub restart_policy: RestartPolicy,
    /// Restarts allowed across the whole job before it fails.
    #[serde(default = "default_backoff_limit")]
    pub backoff_limit: u32,
    /// The container image of every role that names none, on Kubernetes
    /// (the local backend runs commands on this machine and ignores it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Seconds the job may run after admission before it is stopped and failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_deadline_seconds: Option<u64>,
    /// Seconds after the job ends (whatever the phase) before it is deleted
    /// with its logs and records, freeing its name. Local backend only: on
    /// Kubernetes it needs something in the cluster to delete the job, and
    /// submitting is refused (`NotSupported`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds_after_finished: Option<u64>,
    /// Directories of the tenant's storage that every replica sees (see `docs/storage.md`).
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

/// The default number of restarts, as in Kubernetes Jobs.
pub const DEFAULT_BACKOFF_LIMIT: u32 = 6;

fn default_backoff_limit() -> u32 {
    DEFAULT_BACKOFF_LIMIT
}

/// One group of identical replicas.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Role {
    /// The role's name, which the framework rules give meaning to.
    pub name: String,
    /// How many replicas to run.
    #[serde(default = "one")]
    pub replicas: u32,
    /// The program and its first arguments.
    pub command: Vec<String>,
    /// Further arguments appended to `command`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Environment added to what moon sets; moon's rendezvous names win.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Variables of the submitting process that this role's replicas get,
    /// by name, beyond the ones every replica inherits (the list is in
    /// `docs/local-backend.md`). The local backend only: a cluster has no
    /// submitter's environment, so the Kubernetes backend refuses it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inherit_env: Vec<String>,
    /// Secrets of the job's tenant whose keys become this role's variables,
    /// read when each replica starts; the spec holds only their names.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "super::mapping::each"
    )]
    pub env_from: Vec<EnvFrom>,
    /// Directory to start in; the submitter's directory when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// This role's container image on Kubernetes, over the job's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// CPUs per replica, as a number or millicores (`"500m"`).
    #[serde(default = "one_cpu")]
    pub cpus: Quantity,
    /// Memory per replica (`"1Gi"`).
    #[serde(default = "default_memory")]
    pub memory: Quantity,
    /// GPUs per replica: a count of any model, or a selector (`"H100:2"`).
    #[serde(default)]
    pub gpus: Gpus,
}

/// A source of a role's variables: every key of a tenant secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvFrom {
    /// The secret's name, as `moon secret create` made it in the job's tenant.
    pub secret: String,
}

pub(super) fn one() -> u32 {
    1
}

pub(super) fn one_cpu() -> Quantity {
    Quantity::Int(1)
}

pub(super) fn default_memory() -> Quantity {
    Quantity::Text("512Mi".into())
}

/// What happens when a replica exits with a non-zero status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// The job fails as soon as one replica fails.
    #[default]
    Never,
    /// The replica is started again after a backoff, within `backoffLimit`.
    OnFailure,
}

impl Role {
    /// A role with the given name, replica count and command, and defaults
    /// for everything else.
    pub fn new(name: &str, replicas: u32, command: &[&str]) -> Self {
        Role {
            name: name.to_string(),
            replicas,
            command: command.iter().map(|part| part.to_string()).collect(),
            args: Vec::new(),
            env: BTreeMap::new(),
            inherit_env: Vec::new(),
            env_from: Vec::new(),
            working_dir: None,
            image: None,
            cpus: one_cpu(),
            memory: default_memory(),
            gpus: Gpus::default(),
        }
    }

    /// The full argument vector: `command` followed by `args`.
    pub fn argv(&self) -> Vec<String> {
        self.command.iter().chain(&self.args).cloned().collect()
    }
}

impl Job {
    /// A job with the given roles and defaults for everything else.
    pub fn new(name: &str, tenant: &str, framework: Framework, roles: Vec<Role>) -> Self {
        Job {
            kind: JobKind::Job,
            name: name.to_string(),
            tenant: tenant.to_string(),
            framework,
            roles,
            restart_policy: RestartPolicy::default(),
            backoff_limit: DEFAULT_BACKOFF_LIMIT,
            image: None,
            active_deadline_seconds: None,
            ttl_seconds_after_finished: None,
            volumes: Vec::new(),
            labels: BTreeMap::new(),
        }
    }

    /// Total replicas over all roles.
    pub fn replica_count(&self) -> u64 {
        self.roles.iter().map(|role| u64::from(role.replicas)).sum()
    }
}

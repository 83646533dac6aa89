//! What backends report: a job's phase and replicas, its events and log
//! lines, a tenant's usage. Plain data, serialised in camelCase as the CLI's
//! JSON and Python's dicts show it.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::spec::{Framework, Tenant};

/// The life of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub enum Phase {
    /// Accepted, waiting for admission; `reason` says what it waits for.
    Pending,
    /// Admitted; its replicas are starting or running.
    Running,
    /// Every replica that decides success exited 0.
    Succeeded,
    /// A replica failed for good, or the deadline passed.
    Failed,
    /// Cancelled by a user.
    Cancelled,
}

impl Phase {
    /// Whether the job has ended.
    pub fn is_terminal(self) -> bool {
        matches!(self, Phase::Succeeded | Phase::Failed | Phase::Cancelled)
    }

    /// The name used in tables and JSON (`Running`).
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Running => "Running",
            Phase::Succeeded => "Succeeded",
            Phase::Failed => "Failed",
            Phase::Cancelled => "Cancelled",
        }
    }

    /// Parses the name written by `as_str`.
    pub fn parse(text: &str) -> Option<Phase> {
        [
            Phase::Pending,
            Phase::Running,
            Phase::Succeeded,
            Phase::Failed,
            Phase::Cancelled,
        ]
        .into_iter()
        .find(|phase| phase.as_str() == text)
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The life of one replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub enum ReplicaPhase {
    /// Not started yet (job pending, or waiting out a restart backoff).
    Pending,
    /// Its process is running.
    Running,
    /// Exited 0.
    Succeeded,
    /// Exited non-zero or was killed, and will not be restarted.
    Failed,
    /// Stopped by moon (cancel, deadline, or the job ended without it).
    Stopped,
}

impl ReplicaPhase {
    /// The name used in tables and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ReplicaPhase::Pending => "Pending",
            ReplicaPhase::Running => "Running",
            ReplicaPhase::Succeeded => "Succeeded",
            ReplicaPhase::Failed => "Failed",
            ReplicaPhase::Stopped => "Stopped",
        }
    }

    /// Parses the name written by `as_str`.
    pub fn parse(text: &str) -> Option<ReplicaPhase> {
        [
            ReplicaPhase::Pending,
            ReplicaPhase::Running,
            ReplicaPhase::Succeeded,
            ReplicaPhase::Failed,
            ReplicaPhase::Stopped,
        ]
        .into_iter()
        .find(|phase| phase.as_str() == text)
    }
}

/// One replica's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaStatus {
    /// Role name (`worker`).
    pub role: String,
    /// Index within the role, from 0.
    pub index: u32,
    /// Where it stands.
    pub phase: ReplicaPhase,
    /// Attempts started so far (1 once it first runs).
    pub attempts: u32,
    /// Exit code of the latest attempt that ended; `None` while it runs or if killed by a signal.
    pub exit_code: Option<i32>,
    /// Signal that ended the latest attempt, if any.
    pub signal: Option<i32>,
}

impl ReplicaStatus {
    /// `worker-0`.
    pub fn name(&self) -> String {
        format!("{}-{}", self.role, self.index)
    }
}

/// A service's state, as `get` and `list` report it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceStatus {
    /// Tenant name.
    pub tenant: String,
    /// Service name.
    pub name: String,
    /// Where it stands: Pending while its replicas wait for quota, Running once admitted
    /// (whether or not a replica is ready), Cancelled once deleted.
    pub phase: Phase,
    /// A short machine-readable reason (`Quota`).
    pub reason: Option<String>,
    /// A sentence for people.
    pub message: Option<String>,
    /// Where clients reach it: the local proxy's listener (`http://127.0.0.1:40123`).
    pub url: Option<String>,
    /// Replicas it should have now.
    pub desired_replicas: u32,
    /// Replicas taking requests now.
    pub ready_replicas: u32,
    /// Milliseconds since the epoch.
    pub created_ms: i64,
    /// Every replica, ready or not.
    pub replicas: Vec<ServiceReplicaStatus>,
}

impl ServiceStatus {
    /// `tenant/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.tenant, self.name)
    }
}

/// One replica of a service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceReplicaStatus {
    /// `replica-0`.
    pub name: String,
    /// Its process: Pending, Running, or waiting out a restart's backoff.
    pub phase: ReplicaPhase,
    /// Whether it takes requests: running, its readiness check passed, not ejected.
    pub ready: bool,
    /// Where it listens (`127.0.0.1:40177`), once it has a port.
    pub address: Option<String>,
    /// Attempts started so far.
    pub attempts: u32,
    /// Requests it is serving now.
    pub in_flight: u64,
    /// Requests it has answered or failed, since the proxy started.
    pub requests: u64,
}

/// A job's state, as `get`, `list` and `wait` report it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobStatus {
    /// Tenant name.
    pub tenant: String,
    /// Job name.
    pub name: String,
    /// Framework.
    pub framework: Framework,
    /// Where it stands.
    pub phase: Phase,
    /// A short machine-readable reason (`Quota`, `BackoffLimitExceeded`, `DeadlineExceeded`).
    pub reason: Option<String>,
    /// A sentence for people ("tenant vision: gpus 4 of 4 in use, job asks 2").
    pub message: Option<String>,
    /// Milliseconds since the epoch.
    pub created_ms: i64,
    /// When admitted, if it was.
    pub started_ms: Option<i64>,
    /// When it ended, if it did.
    pub finished_ms: Option<i64>,
    /// Restarts so far, over all replicas.
    pub restarts: u32,
    /// Every replica, hidden helpers (the XGBoost tracker) included.
    pub replicas: Vec<ReplicaStatus>,
}

impl JobStatus {
    /// `tenant/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.tenant, self.name)
    }

    /// `Ok(self)` unless Failed or Cancelled, which are `JobFailed`.
    pub fn into_result(self) -> Result<JobStatus> {
        match self.phase {
            Phase::Failed | Phase::Cancelled => Err(Error::JobFailed {
                job: self.key(),
                phase: self.phase.as_str().to_lowercase(),
                reason: self
                    .message
                    .clone()
                    .or(self.reason.clone())
                    .unwrap_or_default(),
            }),
            _ => Ok(self),
        }
    }
}

/// Something that happened to a job, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Position in the job's event stream; resume watching after it.
    pub seq: u64,
    /// Milliseconds since the epoch.
    pub time_ms: i64,
    /// Tenant name.
    pub tenant: String,
    /// Job name.
    pub job: String,
    /// What kind (`Submitted`, `Pending`, `Admitted`, `ReplicaStarted`,
    /// `Running` (Kubernetes: every replica has started), `ReplicaExited`,
    /// `Restarting`, `Succeeded`, `Failed`, `Cancelled`).
    pub kind: String,
    /// The job's phase after the event.
    pub phase: Phase,
    /// The replica concerned (`worker-1`), if any.
    pub replica: Option<String>,
    /// For people.
    pub message: String,
}

/// A tenant and what its running jobs hold now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantStatus {
    /// The spec as applied.
    pub spec: Tenant,
    /// Jobs admitted and not finished.
    pub running_jobs: u64,
    /// Jobs waiting for admission.
    pub pending_jobs: u64,
    /// Millicores held by running jobs.
    pub used_millicores: u64,
    /// Bytes held by running jobs.
    pub used_bytes: u64,
    /// GPUs held by running jobs.
    pub used_gpus: u64,
}

/// What `apply_tenant` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApplyOutcome {
    /// It did not exist.
    Created,
    /// It existed and was different.
    Updated,
    /// It existed exactly so.
    Unchanged,
}

/// Which lines of which replicas to read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogOptions {
    /// Keep reading until the job ends.
    pub follow: bool,
    /// Only the last N lines of each replica's existing log.
    pub tail: Option<usize>,
    /// Only this replica (`worker-1`).
    pub replica: Option<String>,
}

/// One line of a replica's output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogLine {
    /// `worker-0`.
    pub replica: String,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// Milliseconds since the epoch, as stamped by the replica's supervisor.
    pub time_ms: i64,
    /// The line, without its newline.
    pub line: String,
}

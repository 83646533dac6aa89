//! The `Backend` trait: what every place moon runs work (this machine, a
//! Kubernetes cluster) offers, and the status types it reports in.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::secret::{SecretData, SecretInfo};
use crate::spec::{Framework, Job, Tenant};

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

    /// `Ok(self)` when Succeeded, `JobFailed` when Failed or Cancelled.
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

/// A stream of items produced by a background task; ends when the sender does.
pub struct Stream<T> {
    receiver: mpsc::Receiver<Result<T>>,
}

impl<T> Stream<T> {
    /// A stream and the sender that feeds it.
    pub fn channel(capacity: usize) -> (mpsc::Sender<Result<T>>, Stream<T>) {
        let (sender, receiver) = mpsc::channel(capacity);
        (sender, Stream { receiver })
    }

    /// The next item, or `None` at the end.
    pub async fn next(&mut self) -> Option<Result<T>> {
        self.receiver.recv().await
    }

    /// The next item without waiting from outside a runtime.
    pub fn blocking_next(&mut self) -> Option<Result<T>> {
        self.receiver.blocking_recv()
    }
}

/// Where moon runs work. The local backend and the Kubernetes backend both
/// implement it and pass one behaviour suite.
#[async_trait]
pub trait Backend: Send + Sync {
    /// Creates or updates a tenant; applying the same spec twice changes nothing.
    async fn apply_tenant(&self, tenant: &Tenant) -> Result<ApplyOutcome>;
    /// One tenant and its usage.
    async fn get_tenant(&self, name: &str) -> Result<TenantStatus>;
    /// Every tenant, by name.
    async fn list_tenants(&self) -> Result<Vec<TenantStatus>>;
    /// Validates and records a job; it runs once admitted. Returns at once.
    async fn submit(&self, job: &Job) -> Result<JobStatus>;
    /// One job's status.
    async fn get_job(&self, tenant: &str, name: &str) -> Result<JobStatus>;
    /// Jobs, of one tenant or all, oldest first.
    async fn list_jobs(&self, tenant: Option<&str>) -> Result<Vec<JobStatus>>;
    /// Asks a job to stop: SIGTERM to every replica, SIGKILL after the grace period.
    async fn cancel(&self, tenant: &str, name: &str) -> Result<JobStatus>;
    /// The job's events after `after` (all when `None`).
    async fn events(&self, tenant: &str, name: &str, after: Option<u64>) -> Result<Vec<Event>>;
    /// The job's events after `after`, then new ones as they happen; ends after the job does.
    async fn watch(&self, tenant: &str, name: &str, after: Option<u64>) -> Result<Stream<Event>>;
    /// Replica output; with `follow`, until the job ends.
    async fn logs(&self, tenant: &str, name: &str, options: LogOptions) -> Result<Stream<LogLine>>;
    /// Deletes a job with its objects, logs and records, so that its name
    /// can be used again. A job still Pending or Running is refused
    /// (`Conflict`) unless `force`, which cancels it and waits (at most
    /// [`FORCED_END_WAIT`]) for it to end first.
    async fn delete_job(&self, tenant: &str, name: &str, force: bool) -> Result<()>;
    /// Deletes a tenant and every job it has. A tenant with jobs still
    /// Pending or Running is refused (`Conflict`) unless `force`, which
    /// cancels them and waits for them to end first.
    async fn delete_tenant(&self, name: &str, force: bool) -> Result<()>;

    /// Waits for the job to end, by its events, and returns its final status
    /// (whatever the phase). `Timeout` if it has not ended within `timeout`.
    async fn wait(&self, tenant: &str, name: &str, timeout: Option<Duration>) -> Result<JobStatus> {
        let watching = async {
            let mut events = self.watch(tenant, name, None).await?;
            while let Some(event) = events.next().await {
                if event?.phase.is_terminal() {
                    break;
                }
            }
            self.get_job(tenant, name).await
        };
        waiting_at_most(timeout, tenant, name, watching).await
    }

    /// Creates a secret of a tenant, or replaces all its keys: `Created`,
    /// `Updated` or `Unchanged`. Its values are stored where only the
    /// tenant's replicas read them (a 0600 file, a Kubernetes Secret).
    async fn apply_secret(
        &self,
        tenant: &str,
        name: &str,
        data: &SecretData,
    ) -> Result<ApplyOutcome>;
    /// A tenant's secrets with their keys, by name; never their values.
    async fn list_secrets(&self, tenant: &str) -> Result<Vec<SecretInfo>>;
    /// Deletes a secret; jobs that name it and have not started a replica
    /// yet fail to start it. `NotFound` if there is none.
    async fn delete_secret(&self, tenant: &str, name: &str) -> Result<()>;
}

/// How long a forced delete waits for a cancelled job to end: the local
/// backend's grace period before SIGKILL, with room for a loaded machine or
/// a cluster's pods to go.
pub const FORCED_END_WAIT: Duration = Duration::from_secs(60);

/// Makes sure job `tenant/name` has ended before it is deleted: refuses an
/// unfinished job unless `force`, which cancels it and waits for its end.
/// Returns its final status.
pub(crate) async fn end_before_delete<B: Backend + ?Sized>(
    backend: &B,
    tenant: &str,
    name: &str,
    force: bool,
) -> Result<JobStatus> {
    let status = backend.get_job(tenant, name).await?;
    if status.phase.is_terminal() {
        return Ok(status);
    }
    if !force {
        return Err(unfinished_job(&status));
    }
    match backend.cancel(tenant, name).await {
        // It ended by itself between the read and the cancel.
        Ok(_) | Err(Error::Conflict(_)) => {}
        Err(error) => return Err(error),
    }
    backend.wait(tenant, name, Some(FORCED_END_WAIT)).await
}

/// Before a tenant is deleted: refuses (`Conflict`, naming them) when it has
/// jobs that have not ended, unless `force`, which ends each of them first.
pub(crate) async fn end_tenant_jobs_before_delete<B: Backend + ?Sized>(
    backend: &B,
    tenant: &str,
    force: bool,
) -> Result<()> {
    let unfinished: Vec<JobStatus> = backend
        .list_jobs(Some(tenant))
        .await?
        .into_iter()
        .filter(|job| !job.phase.is_terminal())
        .collect();
    if !unfinished.is_empty() && !force {
        return Err(unfinished_tenant(tenant, &unfinished));
    }
    for job in &unfinished {
        end_before_delete(backend, tenant, &job.name, true).await?;
    }
    Ok(())
}

/// The refusal to delete a job that has not ended.
pub(crate) fn unfinished_job(status: &JobStatus) -> Error {
    Error::Conflict(format!(
        "job {} is {}; cancel it and let it end first, or delete it with force \
         (moon job delete --force, delete_job(..., force=True))",
        status.key(),
        status.phase
    ))
}

/// The refusal to delete a tenant whose jobs have not all ended.
fn unfinished_tenant(tenant: &str, unfinished: &[JobStatus]) -> Error {
    let jobs: Vec<String> = unfinished
        .iter()
        .map(|status| format!("{} {}", status.name, status.phase))
        .collect();
    let (count, them) = match unfinished.len() {
        1 => ("1 unfinished job".to_string(), "it"),
        n => (format!("{n} unfinished jobs"), "them"),
    };
    Error::Conflict(format!(
        "tenant {tenant} has {count} ({}); cancel {them} and let {them} end first, \
         or delete the tenant with force (moon tenant delete --force, delete_tenant(..., force=True))",
        jobs.join(", ")
    ))
}

/// Runs a wait for job `tenant/name`; `Timeout` if it takes longer than `limit`.
pub(crate) async fn waiting_at_most<T>(
    limit: Option<Duration>,
    tenant: &str,
    name: &str,
    waiting: impl Future<Output = Result<T>>,
) -> Result<T> {
    match limit {
        None => waiting.await,
        Some(limit) => tokio::time::timeout(limit, waiting)
            .await
            .map_err(|_| Error::Timeout {
                what: format!("job {tenant}/{name}"),
                seconds: limit.as_secs_f64(),
            })?,
    }
}

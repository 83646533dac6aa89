//! The `Backend` trait: what every place moon runs work (this machine, a
//! Kubernetes cluster) offers. The status types it reports in are
//! moon-spec's, re-exported here.

use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::secret::{SecretData, SecretInfo};
use crate::spec::{Job, Service, Spec, Tenant};
use crate::volumes::ResolvedVolume;
pub use moon_spec::status::{
    ApplyOutcome, Event, JobStatus, LogLine, LogOptions, Phase, ReplicaPhase, ReplicaStatus,
    ServiceReplicaStatus, ServiceStatus, TenantStatus,
};

/// What `watch` and `logs` return: a [`futures::Stream`] of items, each
/// `Ok` or the error that ended it; drive it with [`futures::StreamExt`].
pub type Stream<T> = BoxStream<'static, Result<T>>;

/// A stream fed by a background task through the returned sender; it ends
/// when the sender is dropped, and the task sees a closed channel once the
/// stream is.
pub(crate) fn stream_channel<T: Send + 'static>(
    capacity: usize,
) -> (mpsc::Sender<Result<T>>, Stream<T>) {
    let (sender, receiver) = mpsc::channel(capacity);
    let stream = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    });
    (sender, stream.boxed())
}

/// Where moon runs work. The local backend and the Kubernetes backend both
/// implement it and pass one behaviour suite (the Rust conformance suite of
/// `moon-core/tests/conformance/` and the Python behaviour suite).
///
/// # New kinds
///
/// Every kind of object (tenants and jobs today; services, Spark
/// applications and capacity plans next) reaches a backend through
/// [`apply`](Backend::apply) with a [`Spec`], and through methods of its own
/// for what only that kind has (a job's logs). Methods a backend may not
/// offer have a default that answers [`Error::NotSupported`], naming the
/// backend and the operation, so a kind is added to the trait without
/// touching every backend, and each backend opts in where it can serve it.
#[async_trait]
pub trait Backend: Send + Sync {
    /// The backend's name, as users choose it: `local`, `kubernetes`.
    fn name(&self) -> &'static str;

    /// Applies a spec of any kind: a tenant is created or updated, a job
    /// submitted (a job that exists already is `AlreadyExists`). Returns
    /// what happened to the object.
    async fn apply(&self, spec: &Spec) -> Result<ApplyOutcome> {
        match spec {
            Spec::Tenant(tenant) => self.apply_tenant(tenant).await,
            Spec::Job(job) => self.submit(job).await.map(|_| ApplyOutcome::Created),
            Spec::Service(service) => self.apply_service(service).await,
            other => Err(not_supported(
                self.name(),
                &format!("applying a {}", other.kind()),
            )),
        }
    }

    /// Creates a service; applying the same spec again changes nothing.
    async fn apply_service(&self, service: &Service) -> Result<ApplyOutcome> {
        let _ = service;
        Err(not_supported(self.name(), "services"))
    }
    /// One service: its URL and its replicas, with their readiness.
    async fn get_service(&self, tenant: &str, name: &str) -> Result<ServiceStatus> {
        let _ = (tenant, name);
        Err(not_supported(self.name(), "services"))
    }
    /// Services, of one tenant or all, oldest first.
    async fn list_services(&self, tenant: Option<&str>) -> Result<Vec<ServiceStatus>> {
        let _ = tenant;
        Err(not_supported(self.name(), "services"))
    }
    /// Sets a service's replica count: new replicas start; removed ones get
    /// no new request, finish those they have, then stop.
    async fn scale_service(
        &self,
        tenant: &str,
        name: &str,
        replicas: u32,
    ) -> Result<ServiceStatus> {
        let _ = (tenant, name, replicas);
        Err(not_supported(self.name(), "services"))
    }
    /// Deletes a service: no new request reaches its replicas, they stop,
    /// and its URL closes.
    async fn delete_service(&self, tenant: &str, name: &str) -> Result<()> {
        let _ = (tenant, name);
        Err(not_supported(self.name(), "services"))
    }

    /// Creates or updates a tenant; applying the same spec twice changes nothing.
    async fn apply_tenant(&self, tenant: &Tenant) -> Result<ApplyOutcome>;
    /// One tenant and its usage.
    async fn get_tenant(&self, name: &str) -> Result<TenantStatus>;
    /// Every tenant, by name.
    async fn list_tenants(&self) -> Result<Vec<TenantStatus>>;
    /// Validates and records a job; it runs once admitted. Returns at once. A job with
    /// volumes is refused here (`NotSupported`): its volumes are resolved against the
    /// platform's storage servers first, which the client's `submit` does before it calls
    /// [`submit_with_volumes`](Backend::submit_with_volumes).
    async fn submit(&self, job: &Job) -> Result<JobStatus>;
    /// [`submit`](Backend::submit) with the job's volumes resolved: one for each of the
    /// spec's, in order. A backend without volumes refuses a job that has any.
    async fn submit_with_volumes(
        &self,
        job: &Job,
        volumes: &[ResolvedVolume],
    ) -> Result<JobStatus> {
        if job.volumes.is_empty() && volumes.is_empty() {
            self.submit(job).await
        } else {
            Err(not_supported(self.name(), "job volumes"))
        }
    }
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
    ) -> Result<ApplyOutcome> {
        let _ = (tenant, name, data);
        Err(not_supported(self.name(), "secrets"))
    }
    /// A tenant's secrets with their keys, by name; never their values.
    async fn list_secrets(&self, tenant: &str) -> Result<Vec<SecretInfo>> {
        let _ = tenant;
        Err(not_supported(self.name(), "secrets"))
    }
    /// Deletes a secret; jobs that name it and have not started a replica
    /// yet fail to start it. `NotFound` if there is none.
    async fn delete_secret(&self, tenant: &str, name: &str) -> Result<()> {
        let _ = (tenant, name);
        Err(not_supported(self.name(), "secrets"))
    }
}

/// The answer of a backend to an operation it does not offer.
pub fn not_supported(backend: &str, what: &str) -> Error {
    Error::NotSupported(format!("the {backend} backend does not offer {what}"))
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

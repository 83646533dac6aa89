//! `LocalBackend`: the client side of the local backend. It records intents
//! in the database, nudges the agent, and reads status, events and logs.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use inotify::{Inotify, WatchMask};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc;

use super::LocalConfig;
use super::admission::{Limits, gpu_asks, never_fits};
use super::agent_client;
use super::capacity::{machine_capacity_with, machine_gpus};
use super::environment;
use super::layout::Layout;
use super::private::{self, HomeInstance};
use super::protocol::{Reply, Request};
use super::proxy::LocalProxy;
use super::rescale::rescale;
use super::retention;
use super::secrets;
use super::services;
use super::store::{self, Connection, JobRecord, now_ms};
use super::supervisor::parse_log_line;
use crate::backend::{
    ApplyOutcome, Backend, Event, FORCED_END_WAIT, JobStatus, LogLine, LogOptions, Phase,
    ServiceStatus, Stream, TenantStatus, end_before_delete, end_tenant_jobs_before_delete,
    stream_channel,
};
use crate::error::{Error, QuotaRefusal, Result};
use crate::rendezvous;
use crate::secret::{SecretData, SecretInfo};
use crate::spec::{
    Demand, Job, Service, Tenant, validate_job, validate_secret, validate_secret_name,
    validate_service, validate_tenant,
};
use crate::volumes::{ResolvedVolume, check_resolved};
use moon_gpu::placement;

/// The local backend, as a client of one `MOON_HOME`.
pub struct LocalBackend {
    config: LocalConfig,
    layout: Layout,
    db: Arc<Mutex<Database>>,
}

/// The client's connection to the state database, with the home instance
/// it belongs to. A home removed and made anew while a notebook keeps its
/// client is opened anew, so that the client's jobs go where the agent of
/// the new home looks.
struct Database {
    connection: Connection,
    instance: HomeInstance,
}

impl Database {
    fn open(layout: &Layout) -> Result<Database> {
        private::ensure_home(layout.home())
            .map_err(|error| Error::io("creating MOON_HOME", layout.home(), error))?;
        let connection = store::open(&layout.database())?;
        let instance = HomeInstance::of(layout.home(), &layout.database())
            .map_err(|error| Error::io("reading", layout.home(), error))?;
        Ok(Database {
            connection,
            instance,
        })
    }
}

impl std::ops::Deref for Database {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        &self.connection
    }
}

impl LocalBackend {
    /// Opens (creating if needed) the `MOON_HOME` of `config`. Starts no agent yet.
    pub fn open(config: LocalConfig) -> Result<LocalBackend> {
        let layout = Layout::new(&config.home);
        let db = Database::open(&layout)?;
        Ok(LocalBackend {
            config,
            layout,
            db: Arc::new(Mutex::new(db)),
        })
    }

    /// The settings this backend was opened with.
    pub fn config(&self) -> &LocalConfig {
        &self.config
    }

    fn db(&self) -> MutexGuard<'_, Database> {
        // A panic while holding the lock leaves the connection usable: SQLite
        // rolls back an unfinished transaction itself.
        let mut db = self
            .db
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if !db
            .instance
            .is_current(self.layout.home(), &self.layout.database())
        {
            // The home was removed or replaced under us. If it cannot be made
            // again, the old connection stays and its errors tell the user.
            if let Ok(fresh) = Database::open(&self.layout) {
                *db = fresh;
            }
        }
        db
    }

    async fn kick(&self) -> Result<()> {
        let mut replies =
            agent_client::request(&self.layout, &self.config.agent_program, &Request::Kick).await?;
        match replies.next().await? {
            Some(Reply::Error { message }) => Err(Error::Agent(message)),
            _ => Ok(()),
        }
    }

    /// `NotFound` unless the tenant exists.
    fn existing_tenant(&self, name: &str) -> Result<Tenant> {
        store::tenant(&self.db(), name)?.ok_or_else(|| Error::NotFound {
            kind: "tenant",
            name: name.to_string(),
        })
    }

    /// A job by name; one whose `ttlSecondsAfterFinished` has run out is
    /// deleted now and not found, should the agent have left before its time.
    fn find_job(&self, db: &Connection, tenant: &str, name: &str) -> Result<JobRecord> {
        let job = store::find_job(db, tenant, name)?;
        if retention::is_expired(&job, now_ms()) {
            self.forget_expired(db, &job)?;
            return Err(Error::NotFound {
                kind: "job",
                name: job.key(),
            });
        }
        Ok(job)
    }

    /// Checks and records a job (a service's, with `service`), Pending: its
    /// tenant, secrets and quota are checked now, so that a mistake is the
    /// submitter's error rather than a replica's failure later.
    fn record_job(
        &self,
        job: &Job,
        volumes: &[ResolvedVolume],
        service: Option<&Service>,
    ) -> Result<()> {
        validate_job(job)?;
        check_resolved(job, volumes)?;
        {
            let db = self.db();
            let tenant = store::tenant(&db, &job.tenant)?.ok_or_else(|| Error::NotFound {
                kind: "tenant",
                name: job.tenant.clone(),
            })?;
            // Checked now so that a typo is the submitter's error, not a
            // replica's failure later; a secret deleted in between still
            // fails the replica that needs it, naming it.
            for role in &job.roles {
                for source in &role.env_from {
                    if !secrets::exists(&self.layout, &job.tenant, &source.secret) {
                        return Err(Error::NotFound {
                            kind: "secret",
                            name: format!("{}/{}", job.tenant, source.secret),
                        });
                    }
                }
            }
            let demand = Demand::of(job);
            // The inventory is read only for jobs that ask for GPUs: NVML
            // takes a moment to load.
            let gpus = if demand.gpus > 0 {
                machine_gpus()?
            } else {
                None
            };
            let machine = machine_capacity_with(&self.layout.config_file(), gpus.as_deref())?;
            if let Some(reason) = never_fits(
                &job.tenant,
                &Limits::of_quota(&tenant.quota),
                &machine,
                &demand,
            ) {
                return Err(Error::QuotaExceeded(Box::new(reason)));
            }
            if let Some(devices) = &gpus
                && let Err(no_fit) = placement::machine::place(devices, &gpu_asks(job))
            {
                return Err(Error::QuotaExceeded(Box::new(QuotaRefusal::new(
                    "machine",
                    "gpus",
                    "0",
                    demand.gpus.to_string(),
                    no_fit.left.to_string(),
                    format!("machine: {no_fit}, with every GPU free: it could never run here"),
                ))));
            }
            // An expired job of the same name is gone, whether or not the
            // agent was there to delete it.
            match self.find_job(&db, &job.tenant, &job.name) {
                Ok(_) | Err(Error::NotFound { .. }) => {}
                Err(error) => return Err(error),
            }
            let submit_dir = std::env::current_dir()
                .map_err(|error| Error::io("reading the working directory", ".", error))?;
            let submit_env = environment::submitted(job, std::env::vars_os());
            let tx = db.transaction()?;
            store::insert_job(&tx, job, &demand, &submit_dir, &submit_env, volumes)?;
            let record = store::find_job(&tx, &job.tenant, &job.name)?;
            if let Some(service) = service {
                store::insert_service(&tx, record.id, service)?;
            }
            store::add_event(&tx, &record, "Submitted", Phase::Pending, None, "submitted")?;
            tx.commit()?;
        }
        Ok(())
    }

    /// A job that is not a service's: services' jobs are reached as services.
    fn find_plain_job(&self, db: &Connection, tenant: &str, name: &str) -> Result<JobRecord> {
        let job = self.find_job(db, tenant, name)?;
        if job.service.is_some() {
            return Err(Error::NotFound {
                kind: "job",
                name: job.key(),
            });
        }
        Ok(job)
    }

    /// The job of service `tenant/name`.
    fn find_service_job(
        &self,
        db: &Connection,
        tenant: &str,
        name: &str,
    ) -> Result<(JobRecord, Service)> {
        let not_found = || Error::NotFound {
            kind: "service",
            name: format!("{tenant}/{name}"),
        };
        let job = match store::find_job(db, tenant, name) {
            Err(Error::NotFound { .. }) => return Err(not_found()),
            other => other?,
        };
        match job.service.clone() {
            Some(service) => Ok((job, service)),
            None => Err(not_found()),
        }
    }

    /// The proxy's view of every service it serves, when it runs.
    async fn routes(&self) -> Vec<moon_net::proxy::RouteStatus> {
        match LocalProxy::running_admin(&self.layout) {
            Some(admin) => admin.routes().await.unwrap_or_default(),
            None => Vec::new(),
        }
    }

    fn forget_expired(&self, db: &Connection, job: &JobRecord) -> Result<()> {
        match retention::delete_job(db, &self.layout, job.id) {
            // The agent or another client deleted it first.
            Ok(()) | Err(Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(error),
        }
    }

    fn tenant_status(&self, db: &Connection, spec: Tenant) -> Result<TenantStatus> {
        let mut status = TenantStatus {
            spec,
            running_jobs: 0,
            pending_jobs: 0,
            used_millicores: 0,
            used_bytes: 0,
            used_gpus: 0,
        };
        for job in store::jobs(
            db,
            Some(&status.spec.name),
            &[Phase::Pending, Phase::Running],
        )? {
            if job.phase == Phase::Pending {
                status.pending_jobs += 1;
            } else {
                let demand = Demand::of(&job.spec);
                status.running_jobs += 1;
                status.used_millicores += demand.millicores;
                status.used_bytes += demand.bytes;
                status.used_gpus += demand.gpus;
            }
        }
        Ok(status)
    }
}

#[async_trait]
impl Backend for LocalBackend {
    fn name(&self) -> &'static str {
        "local"
    }

    async fn apply_service(&self, service: &Service) -> Result<ApplyOutcome> {
        validate_service(service)?;
        if !service.volumes.is_empty() {
            return Err(crate::backend::not_supported(
                "local",
                "service volumes yet",
            ));
        }
        // Only the replica count differs from the running service's: a scale.
        let scale = {
            let db = self.db();
            match store::find_job(&db, &service.tenant, &service.name) {
                Err(Error::NotFound { .. }) => false,
                Err(error) => return Err(error),
                Ok(existing) => match &existing.service {
                    None => {
                        return Err(Error::AlreadyExists {
                            kind: "job",
                            name: existing.key(),
                        });
                    }
                    Some(_) if existing.phase.is_terminal() => {
                        // Deleted or failed for good: its name is free again.
                        retention::delete_job(&db, &self.layout, existing.id)?;
                        false
                    }
                    Some(spec) if spec == service => return Ok(ApplyOutcome::Unchanged),
                    Some(spec)
                        if spec
                            == &Service {
                                replicas: spec.replicas,
                                ..service.clone()
                            } =>
                    {
                        // An autoscaled service's count is the autoscaler's:
                        // applying the same spec again leaves it be.
                        if spec.autoscale.is_some() {
                            return Ok(ApplyOutcome::Unchanged);
                        }
                        true
                    }
                    Some(_) => {
                        return Err(Error::Conflict(format!(
                            "service {} exists with another spec; the local backend changes \
                             only the replica count of a running service: delete it and apply again",
                            existing.key()
                        )));
                    }
                },
            }
        };
        if scale {
            self.scale_service(&service.tenant, &service.name, service.replicas)
                .await?;
            return Ok(ApplyOutcome::Updated);
        }
        self.record_job(&service.replica_job(service.replicas), &[], Some(service))?;
        self.kick().await?;
        Ok(ApplyOutcome::Created)
    }

    async fn get_service(&self, tenant: &str, name: &str) -> Result<ServiceStatus> {
        let (job, service, replicas) = {
            let db = self.db();
            let (job, service) = self.find_service_job(&db, tenant, name)?;
            let replicas = store::replicas(&db, job.id)?;
            (job, service, replicas)
        };
        Ok(services::status(
            &job,
            &service,
            &replicas,
            &self.routes().await,
        ))
    }

    async fn list_services(&self, tenant: Option<&str>) -> Result<Vec<ServiceStatus>> {
        let found = {
            let db = self.db();
            let mut found = Vec::new();
            for job in store::jobs(&db, tenant, &[])? {
                if let Some(service) = job.service.clone() {
                    let replicas = store::replicas(&db, job.id)?;
                    found.push((job, service, replicas));
                }
            }
            found
        };
        let routes = self.routes().await;
        Ok(found
            .iter()
            .map(|(job, service, replicas)| services::status(job, service, replicas, &routes))
            .collect())
    }

    async fn scale_service(
        &self,
        tenant: &str,
        name: &str,
        replicas: u32,
    ) -> Result<ServiceStatus> {
        {
            let db = self.db();
            let (job, _) = self.find_service_job(&db, tenant, name)?;
            let machine = machine_capacity_with(&self.layout.config_file(), None)?;
            rescale(&db, &machine, &job, replicas)?;
        }
        self.kick().await?;
        self.get_service(tenant, name).await
    }

    async fn delete_service(&self, tenant: &str, name: &str) -> Result<()> {
        let (job, _) = self.find_service_job(&self.db(), tenant, name)?;
        if !job.phase.is_terminal() {
            store::request_cancel(&self.db(), job.id)?;
            self.kick().await?;
            let deadline = std::time::Instant::now() + FORCED_END_WAIT;
            loop {
                let (now, _) = self.find_service_job(&self.db(), tenant, name)?;
                if now.phase.is_terminal() {
                    break;
                }
                if std::time::Instant::now() >= deadline {
                    return Err(Error::Timeout {
                        what: format!("service {tenant}/{name} to stop"),
                        seconds: FORCED_END_WAIT.as_secs_f64(),
                    });
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        retention::delete_job(&self.db(), &self.layout, job.id)
    }

    async fn apply_tenant(&self, tenant: &Tenant) -> Result<ApplyOutcome> {
        validate_tenant(tenant)?;
        let outcome = {
            let db = self.db();
            match store::tenant(&db, &tenant.name)? {
                Some(existing) if &existing == tenant => ApplyOutcome::Unchanged,
                existing => {
                    store::put_tenant(&db, tenant)?;
                    if existing.is_some() {
                        ApplyOutcome::Updated
                    } else {
                        ApplyOutcome::Created
                    }
                }
            }
        };
        if outcome == ApplyOutcome::Updated {
            // A larger quota may admit waiting jobs.
            let waiting =
                !store::jobs(&self.db(), Some(&tenant.name), &[Phase::Pending])?.is_empty();
            if waiting {
                self.kick().await?;
            }
        }
        Ok(outcome)
    }

    async fn get_tenant(&self, name: &str) -> Result<TenantStatus> {
        let db = self.db();
        let spec = store::tenant(&db, name)?.ok_or_else(|| Error::NotFound {
            kind: "tenant",
            name: name.to_string(),
        })?;
        self.tenant_status(&db, spec)
    }

    async fn list_tenants(&self) -> Result<Vec<TenantStatus>> {
        let db = self.db();
        store::tenants(&db)?
            .into_iter()
            .map(|spec| self.tenant_status(&db, spec))
            .collect()
    }

    async fn submit(&self, job: &Job) -> Result<JobStatus> {
        self.submit_with_volumes(job, &[]).await
    }

    async fn submit_with_volumes(
        &self,
        job: &Job,
        volumes: &[ResolvedVolume],
    ) -> Result<JobStatus> {
        self.record_job(job, volumes, None)?;
        self.kick().await?;
        self.get_job(&job.tenant, &job.name).await
    }

    async fn get_job(&self, tenant: &str, name: &str) -> Result<JobStatus> {
        let db = self.db();
        let job = self.find_plain_job(&db, tenant, name)?;
        store::status(&db, &job)
    }

    async fn list_jobs(&self, tenant: Option<&str>) -> Result<Vec<JobStatus>> {
        let db = self.db();
        let now = now_ms();
        let mut statuses = Vec::new();
        for job in store::jobs(&db, tenant, &[])? {
            if job.service.is_some() {
                continue;
            }
            if retention::is_expired(&job, now) {
                self.forget_expired(&db, &job)?;
            } else {
                statuses.push(store::status(&db, &job)?);
            }
        }
        Ok(statuses)
    }

    async fn cancel(&self, tenant: &str, name: &str) -> Result<JobStatus> {
        let phase = {
            let db = self.db();
            let job = self.find_plain_job(&db, tenant, name)?;
            if matches!(job.phase, Phase::Succeeded | Phase::Failed) {
                return Err(Error::Conflict(format!(
                    "job {} already ended {}",
                    job.key(),
                    job.phase
                )));
            }
            if !job.phase.is_terminal() && !job.cancel_requested {
                store::request_cancel(&db, job.id)?;
                store::add_event(
                    &db,
                    &job,
                    "CancelRequested",
                    job.phase,
                    None,
                    "cancel requested",
                )?;
            }
            job.phase
        };
        if !phase.is_terminal() {
            self.kick().await?;
        }
        self.get_job(tenant, name).await
    }

    async fn events(&self, tenant: &str, name: &str, after: Option<u64>) -> Result<Vec<Event>> {
        let db = self.db();
        let job = self.find_job(&db, tenant, name)?;
        store::events(&db, &job, after)
    }

    async fn watch(&self, tenant: &str, name: &str, after: Option<u64>) -> Result<Stream<Event>> {
        let job = self.find_job(&self.db(), tenant, name)?;
        let (sender, stream) = stream_channel(64);
        let db = self.db.clone();
        let layout = self.layout.clone();
        let program = self.config.agent_program.clone();
        tokio::spawn(async move {
            // A caller that stops listening (a wait that timed out, a closed
            // stream) ends the forwarding, so no task lingers to restart an agent.
            tokio::select! {
                () = sender.closed() => {}
                result = forward_events(&db, &layout, &program, &job, after, &sender) => {
                    if let Err(error) = result {
                        let _ = sender.send(Err(error)).await;
                    }
                }
            }
        });
        Ok(stream)
    }

    async fn delete_job(&self, tenant: &str, name: &str, force: bool) -> Result<()> {
        end_before_delete(self, tenant, name, force).await?;
        let db = self.db();
        let job = store::find_job(&db, tenant, name)?;
        retention::delete_job(&db, &self.layout, job.id)
    }

    async fn delete_tenant(&self, name: &str, force: bool) -> Result<()> {
        self.get_tenant(name).await?;
        end_tenant_jobs_before_delete(self, name, force).await?;
        retention::delete_tenant(&self.db(), &self.layout, name)
    }

    async fn logs(&self, tenant: &str, name: &str, options: LogOptions) -> Result<Stream<LogLine>> {
        let job = self.find_job(&self.db(), tenant, name)?;
        let mut replicas: Vec<String> = store::replicas(&self.db(), job.id)?
            .iter()
            .map(|replica| replica.name())
            .collect();
        if replicas.is_empty() {
            replicas = replica_names(&job);
        }
        if let Some(only) = &options.replica {
            if !replicas.contains(only) {
                return Err(Error::NotFound {
                    kind: "replica",
                    name: format!("{}/{only}", job.key()),
                });
            }
            replicas.retain(|name| name == only);
        }
        let files: Vec<(String, PathBuf)> = replicas
            .into_iter()
            .map(|replica| {
                let path = self.layout.replica_log(job.id, &replica);
                (replica, path)
            })
            .collect();
        let (sender, stream) = stream_channel(256);
        if !options.follow {
            let mut lines = Vec::new();
            for (replica, path) in &files {
                let mut reader = LogReader::new(replica, path.clone());
                let mut read = reader.read_new();
                if let Some(tail) = options.tail {
                    read.drain(..read.len().saturating_sub(tail));
                }
                lines.extend(read);
            }
            lines.sort_by_key(|line| line.time_ms);
            tokio::spawn(async move {
                for line in lines {
                    if sender.send(Ok(line)).await.is_err() {
                        return;
                    }
                }
            });
            return Ok(stream);
        }
        let log_dir = self.layout.log_dir(job.id);
        private::create_dir_all(&log_dir)
            .map_err(|error| Error::io("creating", &log_dir, error))?;
        let inotify = Inotify::init().map_err(|error| Error::io("watching", &log_dir, error))?;
        inotify
            .watches()
            .add(&log_dir, WatchMask::MODIFY | WatchMask::CREATE)
            .map_err(|error| Error::io("watching", &log_dir, error))?;
        let events = self.watch(tenant, name, None).await?;
        tokio::spawn(follow_logs(files, options.tail, inotify, events, sender));
        Ok(stream)
    }

    async fn apply_secret(
        &self,
        tenant: &str,
        name: &str,
        data: &SecretData,
    ) -> Result<ApplyOutcome> {
        validate_secret(name, data)?;
        self.existing_tenant(tenant)?;
        secrets::write(&self.layout, tenant, name, data)
    }

    async fn list_secrets(&self, tenant: &str) -> Result<Vec<SecretInfo>> {
        self.existing_tenant(tenant)?;
        secrets::list(&self.layout, tenant)
    }

    async fn delete_secret(&self, tenant: &str, name: &str) -> Result<()> {
        validate_secret_name(name)?;
        self.existing_tenant(tenant)?;
        secrets::delete(&self.layout, tenant, name)
    }
}

/// Streams a job's events: from the database if it has ended, else from the
/// agent, reconnecting (which restarts a dead agent) until the last event.
async fn forward_events(
    db: &Mutex<Database>,
    layout: &Layout,
    program: &std::path::Path,
    job: &JobRecord,
    after: Option<u64>,
    sender: &mpsc::Sender<Result<Event>>,
) -> Result<()> {
    let mut last = after.unwrap_or(0);
    let mut retry_delay = Duration::from_millis(50);
    loop {
        let (ended, stored) = {
            let db = db.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let current = store::job_by_id(&db, job.id)?;
            let stored = if current.phase.is_terminal() {
                store::events(&db, job, Some(last))?
            } else {
                Vec::new()
            };
            (current.phase.is_terminal(), stored)
        };
        if ended {
            for event in stored {
                if sender.send(Ok(event)).await.is_err() {
                    return Ok(());
                }
            }
            return Ok(());
        }
        let request = Request::Watch {
            job: job.id,
            after: last,
        };
        if let Ok(mut replies) = agent_client::request(layout, program, &request).await {
            while let Ok(Some(reply)) = replies.next().await {
                match reply {
                    Reply::Event { event } => {
                        last = event.seq;
                        let terminal = event.phase.is_terminal();
                        if sender.send(Ok(event)).await.is_err() || terminal {
                            return Ok(());
                        }
                        retry_delay = Duration::from_millis(50);
                    }
                    Reply::Error { message } => return Err(Error::Agent(message)),
                    Reply::Ok { .. } => {}
                }
            }
        }
        // The agent went away mid-stream (it crashed or was killed); the
        // next request starts a new one, which recovers the job.
        tokio::time::sleep(retry_delay).await;
        retry_delay = (retry_delay * 2).min(Duration::from_secs(1));
    }
}

/// Replica names from the spec, for jobs not admitted yet.
fn replica_names(job: &JobRecord) -> Vec<String> {
    job.spec
        .roles
        .iter()
        .cloned()
        .chain(rendezvous::hidden_roles(&job.spec, "127.0.0.1", 0))
        .flat_map(|role| (0..role.replicas).map(move |index| format!("{}-{index}", role.name)))
        .collect()
}

/// Reads whole new lines from one replica's log.
struct LogReader {
    replica: String,
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
}

impl LogReader {
    fn new(replica: &str, path: PathBuf) -> LogReader {
        LogReader {
            replica: replica.to_string(),
            path,
            offset: 0,
            partial: Vec::new(),
        }
    }

    fn read_new(&mut self) -> Vec<LogLine> {
        let Ok(mut file) = std::fs::File::open(&self.path) else {
            return Vec::new();
        };
        if file.seek(SeekFrom::Start(self.offset)).is_err() {
            return Vec::new();
        }
        let mut bytes = Vec::new();
        let Ok(read) = file.read_to_end(&mut bytes) else {
            return Vec::new();
        };
        self.offset += read as u64;
        self.partial.extend_from_slice(&bytes);
        let mut lines = Vec::new();
        while let Some(end) = self.partial.iter().position(|byte| *byte == b'\n') {
            let raw: Vec<u8> = self.partial.drain(..=end).collect();
            let text = String::from_utf8_lossy(&raw[..raw.len() - 1]);
            if let Some((time_ms, stream, line)) = parse_log_line(&text) {
                lines.push(LogLine {
                    replica: self.replica.clone(),
                    stream,
                    time_ms,
                    line,
                });
            }
        }
        lines
    }
}

async fn follow_logs(
    files: Vec<(String, PathBuf)>,
    tail: Option<usize>,
    inotify: Inotify,
    mut events: Stream<Event>,
    sender: mpsc::Sender<Result<LogLine>>,
) {
    let mut readers: HashMap<String, LogReader> = files
        .iter()
        .map(|(replica, path)| (replica.clone(), LogReader::new(replica, path.clone())))
        .collect();
    let mut first = Vec::new();
    for reader in readers.values_mut() {
        let mut lines = reader.read_new();
        if let Some(tail) = tail {
            lines.drain(..lines.len().saturating_sub(tail));
        }
        first.extend(lines);
    }
    first.sort_by_key(|line| line.time_ms);
    for line in first {
        if sender.send(Ok(line)).await.is_err() {
            return;
        }
    }
    // SAFETY: the AsyncFd owns the Inotify, whose descriptor lives as long as it does.
    let Ok(changes) = (unsafe { AsyncFd::register_with_interest(inotify, Interest::READABLE) })
    else {
        return;
    };
    let mut changes = changes;
    let mut buffer = [0u8; 4096];
    let mut ended = false;
    while !ended {
        tokio::select! {
            () = sender.closed() => return,
            ready = changes.readable_mut() => {
                let Ok(mut guard) = ready else { return };
                match guard.get_inner_mut().read_events(&mut buffer) {
                    Ok(_) => {}
                    Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => guard.clear_ready(),
                    Err(_) => return,
                }
            }
            event = events.next() => match event {
                Some(Ok(event)) if !event.phase.is_terminal() => continue,
                Some(Err(error)) => {
                    let _ = sender.send(Err(error)).await;
                    return;
                }
                _ => ended = true,
            },
        }
        let mut lines = Vec::new();
        for reader in readers.values_mut() {
            lines.extend(reader.read_new());
        }
        lines.sort_by_key(|line| line.time_ms);
        for line in lines {
            if sender.send(Ok(line)).await.is_err() {
                return;
            }
        }
    }
}

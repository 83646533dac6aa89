//! The agent's decisions: what it remembers between passes, and the pass
//! that brings the world in line with the database. Everything it decides
//! is committed to the database before it acts.
//!
//! The loop takes every message that waits before it looks at the database
//! again, and then looks only at the jobs those messages concern: its work
//! per event does not grow with the number of jobs the home has seen. The
//! steps themselves live beside it: `admit` (admission), `launch` (an
//! attempt and its supervisor), `exits` (an attempt's end and what follows),
//! `ending` (stopping and finishing a job), `recovery` (after a crash).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc;

use tokio::runtime::Handle;

use super::admission::Limits;
use super::admit;
use super::agent_server::Message;
use super::autoscaling::Autoscaling;
use super::capacity::machine_capacity_with;
use super::crash_points::{self, CrashPoint};
use super::ending;
use super::event_hub::EventHub;
use super::exits;
use super::gpus::Gpus;
use super::launch::{self, Launched, is_hidden_role};
use super::layout::Layout;
use super::ports;
use super::proxy::LocalProxy;
use super::recovery::{self, Found};
use super::rescale::rescale;
use super::retention;
use super::services;
use super::store::{self, AttemptKey, Connection, JobRecord, now_ms};
use super::volumes;
use crate::backend::{Phase, ReplicaPhase};
use crate::error::{Error, Result};
use crate::rendezvous;
use crate::spec::{Autoscale, Service};
use moon_spec::autoscale::Decision;

/// The agent's decision-maker; it owns the database connection, on the
/// agent's decision thread.
pub struct Agent {
    layout: Layout,
    program: PathBuf,
    db: Connection,
    capacity: Limits,
    gpus: Gpus,
    messages: mpsc::Sender<Message>,
    runtime: Handle,
    /// Watchers by job; fed after each pass.
    hub: Arc<EventHub>,
    /// The last event handed to the hub.
    published: u64,
    /// Attempts whose supervisor we wait on.
    watched: HashSet<AttemptKey>,
    /// Attempts we asked to stop.
    stopping: HashSet<AttemptKey>,
    /// Jobs whose startup ports are being waited for, and those that listen.
    starting: HashSet<i64>,
    started: HashSet<i64>,
    /// Jobs whose volumes are being mounted, and those whose volumes are.
    mounting: HashSet<i64>,
    mounted: HashSet<i64>,
    /// Jobs to look at in the next pass.
    dirty: BTreeSet<i64>,
    /// Whether admission should run: a job arrived or capacity came free.
    admission_due: bool,
    /// Whether a client nudged us: cancels may wait.
    nudged: bool,
    /// When each running job with a deadline must end.
    deadlines: HashMap<i64, i64>,
    /// A failed pass is tried again at this time.
    retry_at: Option<i64>,
    /// The proxy in front of the running services.
    proxy: LocalProxy,
    /// What the autoscaled services' autoscalers remember between readings.
    autoscaling: Autoscaling,
    /// Replicas of services scaled down past them, by (job, index): since
    /// when the proxy drains them.
    draining: HashMap<(i64, u32), i64>,
    /// Those stopped before their requests finished, told once.
    draining_overdue: HashSet<(i64, u32)>,
    /// How long a replica may drain before it is stopped anyway.
    drain_deadline_ms: i64,
}

impl Agent {
    /// The agent of `layout`'s home, starting supervisors with `program`;
    /// supervisors' exits and startup ports come back through `messages`,
    /// waited for on `runtime`.
    pub fn new(
        layout: Layout,
        program: PathBuf,
        messages: mpsc::Sender<Message>,
        runtime: Handle,
        hub: Arc<EventHub>,
    ) -> Result<Agent> {
        let db = store::open(&layout.database())?;
        let gpus = Gpus::detect()?;
        let capacity = machine_capacity_with(&layout.config_file(), gpus.devices())?;
        let published = store::last_event_seq(&db)?;
        let proxy = LocalProxy::new(layout.clone(), program.clone());
        Ok(Agent {
            layout,
            program,
            db,
            capacity,
            gpus,
            messages,
            runtime,
            hub,
            published,
            watched: HashSet::new(),
            stopping: HashSet::new(),
            starting: HashSet::new(),
            started: HashSet::new(),
            mounting: HashSet::new(),
            mounted: HashSet::new(),
            dirty: BTreeSet::new(),
            admission_due: true,
            nudged: true,
            deadlines: HashMap::new(),
            retry_at: None,
            proxy,
            autoscaling: Autoscaling::default(),
            draining: HashMap::new(),
            draining_overdue: HashSet::new(),
            drain_deadline_ms: drain_deadline_ms(),
        })
    }

    /// Takes one message: records what it says and notes what to look at.
    pub fn take(&mut self, message: Message) -> Result<()> {
        match message {
            Message::Kick => {
                self.nudged = true;
                self.admission_due = true;
            }
            Message::AttemptEnded(key) => {
                self.dirty.insert(key.job_id);
                self.attempt_ended(&key)?;
            }
            Message::StartupDone(job) => {
                self.starting.remove(&job);
                self.started.insert(job);
                self.dirty.insert(job);
            }
            Message::VolumesMounted(id, outcome) => self.volumes_mounted(id, outcome)?,
        }
        Ok(())
    }

    /// Starts the job's replicas once its volumes are mounted, or fails it, naming the
    /// volume, when one could not be. A job that ended meanwhile loses its mounts at once.
    fn volumes_mounted(&mut self, id: i64, outcome: std::result::Result<(), String>) -> Result<()> {
        if !self.mounting.remove(&id) {
            return Ok(());
        }
        self.dirty.insert(id);
        let running = match store::job_by_id(&self.db, id) {
            Ok(job) => job.phase == Phase::Running && job.ending.is_none(),
            Err(Error::NotFound { .. }) => false,
            Err(error) => return Err(error),
        };
        match outcome {
            Ok(()) if running => {
                self.mounted.insert(id);
            }
            Ok(()) => {
                volumes::unmount_below(&self.layout.volumes_dir(id));
            }
            Err(message) if running => {
                store::begin_ending(&self.db, id, Phase::Failed, "VolumeMountFailed", &message)?;
            }
            Err(_) => {}
        }
        Ok(())
    }

    /// After a failed pass, everything is looked at again shortly.
    pub fn retry_soon(&mut self) {
        self.retry_at = Some(now_ms() + 1_000);
        self.nudged = true;
        self.admission_due = true;
    }

    /// Hands the events committed since the last call to their watchers.
    pub fn publish_events(&mut self) {
        match store::events_since(&self.db, self.published) {
            Ok(events) => {
                if let Some((_, last)) = events.last() {
                    self.published = last.seq;
                }
                self.hub.publish(events);
            }
            Err(error) => eprintln!("moon agent: reading new events: {error}"),
        }
    }

    /// Whether any job is Pending or Running: the agent stays while one is.
    pub fn has_unfinished_jobs(&self) -> Result<bool> {
        store::has_unfinished_jobs(&self.db)
    }

    /// When something is next due: a restart after its backoff, a deadline,
    /// a retry after a failed pass, or a reading of the autoscaled services.
    pub fn next_wake_ms(&self) -> Result<Option<i64>> {
        let restart = store::next_restart_ms(&self.db)?;
        let expiry = retention::next_expiry_ms(&self.db)?;
        Ok([
            restart,
            self.deadlines.values().min().copied(),
            self.retry_at,
            expiry,
            self.autoscaling.next_ms(),
        ]
        .into_iter()
        .flatten()
        .min())
    }

    /// Picks up after a crash: every attempt that was launching or running
    /// is adopted, finished, or abandoned if no supervisor ever claimed it.
    pub fn recover(&mut self) -> Result<()> {
        for key in store::attempts_in_flight(&self.db)? {
            match recovery::examine(&self.layout, &key) {
                Found::Unclaimed => recovery::abandon(&self.db, &key)?,
                Found::Running(pid) => {
                    store::mark_attempt_running(&self.db, &key, pid)?;
                    self.watch_supervisor(key, pid);
                }
                Found::Ended => self.attempt_ended(&key)?,
            }
        }
        // Every running job is looked at once, and its deadline noted.
        let running = store::jobs(&self.db, None, &[Phase::Running])?;
        let ids: HashSet<i64> = running.iter().map(|job| job.id).collect();
        for failure in volumes::unmount_stale(&self.layout, |id| ids.contains(&id)) {
            eprintln!("moon agent: {failure}");
        }
        for job in running {
            if let Some(at) = job.started_ms.and_then(|started| deadline(&job, started)) {
                self.deadlines.insert(job.id, at);
            }
            self.dirty.insert(job.id);
        }
        Ok(())
    }

    fn watch_supervisor(&mut self, key: AttemptKey, pid: i32) {
        if self.watched.insert(key.clone()) {
            exits::watch_supervisor(&self.runtime, &self.messages, key, pid);
        }
    }

    /// Forgets what was waited for of an attempt that ended, and records its end.
    fn attempt_ended(&mut self, key: &AttemptKey) -> Result<()> {
        self.watched.remove(key);
        self.stopping.remove(key);
        self.dirty.insert(key.job_id);
        exits::record_exit(&self.db, &self.layout, key)
    }

    /// Brings the world in line with the database for what changed: cancels
    /// asked for, deadlines and restart backoffs that came due, admission
    /// when a job arrived or capacity came free, and each job a message
    /// concerned. A job that ends frees capacity, so passes repeat until one
    /// changes nothing.
    pub fn reconcile(&mut self) -> Result<()> {
        self.retry_at = None;
        retention::delete_expired(&self.db, &self.layout, now_ms())?;
        loop {
            let now = now_ms();
            if std::mem::take(&mut self.nudged) {
                self.take_cancels()?;
            }
            self.take_due(now)?;
            if std::mem::take(&mut self.admission_due) {
                self.admit()?;
            }
            if self.dirty.is_empty() {
                return Ok(());
            }
            for id in std::mem::take(&mut self.dirty) {
                self.look_at(id, now)?;
            }
        }
    }

    /// Keeps running services at their replica count and the proxy's routes
    /// equal to theirs (starting the proxy for the first service, stopping
    /// it after the last). A service scaled up gets replicas (with ports) and
    /// they launch; one scaled down first drops its last replicas from its
    /// route, and stops each once the proxy has drained it.
    pub fn sync_services(&mut self) -> Result<()> {
        self.autoscale()?;
        let mut grew = false;
        for job in store::running_services(&self.db)? {
            if job.ending.is_none() {
                grew |= self.grow_service(&job)?;
            }
        }
        if grew {
            self.reconcile()?;
        }
        let mut routes = Vec::new();
        let mut retiring = Vec::new();
        for job in store::running_services(&self.db)? {
            let Some(service) = &job.service else {
                continue;
            };
            if job.ending.is_some() {
                continue;
            }
            let desired = services::desired_replicas(&job);
            let mut replicas = store::replicas(&self.db, job.id)?;
            for replica in replicas.iter().filter(|r| r.index >= desired) {
                if replica.phase == ReplicaPhase::Running {
                    retiring.push((
                        job.id,
                        services::route_name(&service.tenant, &service.name),
                        replica.index,
                    ));
                } else {
                    store::delete_replica(&self.db, job.id, &replica.role, replica.index)?;
                }
            }
            replicas.retain(|r| r.index < desired);
            routes.extend(services::route(&job, service, &replicas));
        }
        self.proxy.sync(&self.runtime, routes)?;
        let mut draining = HashMap::new();
        if !retiring.is_empty() {
            let seen = self.proxy.statuses(&self.runtime)?;
            let now = now_ms();
            for (job_id, route, index) in retiring {
                let since = self.draining.get(&(job_id, index)).copied().unwrap_or(now);
                draining.insert((job_id, index), since);
                if services::drained(&seen, &route, index) {
                    self.retire(job_id, index)?;
                } else if now - since >= self.drain_deadline_ms {
                    // A request that never ends (a stream, a hung replica)
                    // must not keep a scale-down from ever finishing.
                    if self.draining_overdue.insert((job_id, index)) {
                        let job = store::job_by_id(&self.db, job_id)?;
                        let replica = rendezvous::port_name(crate::spec::REPLICA_ROLE, index);
                        let message = format!(
                            "{replica} still had requests in flight after {:.0}s of draining: \
                             stopping it",
                            self.drain_deadline_ms as f64 / 1000.0
                        );
                        store::add_event(
                            &self.db,
                            &job,
                            "DrainTimedOut",
                            Phase::Running,
                            Some(&replica),
                            &message,
                        )?;
                    }
                    self.retire(job_id, index)?;
                }
            }
        }
        self.draining_overdue
            .retain(|key| draining.contains_key(key));
        self.draining = draining;
        Ok(())
    }

    /// Reads the proxy's counters of the autoscaled services when due, and
    /// scales each to what its autoscaler decides, recording why.
    fn autoscale(&mut self) -> Result<()> {
        let now = now_ms();
        if !self.autoscaling.due(now) {
            return Ok(());
        }
        let jobs = store::running_services(&self.db)?;
        let autoscaled: Vec<(&JobRecord, &Service, &Autoscale)> = jobs
            .iter()
            .filter(|job| job.ending.is_none())
            .filter_map(|job| {
                let service = job.service.as_ref()?;
                Some((job, service, service.autoscale.as_ref()?))
            })
            .collect();
        let routes = if autoscaled.is_empty() {
            Vec::new()
        } else {
            self.proxy.statuses(&self.runtime)?
        };
        let mut counts = Vec::new();
        for (job, service, spec) in autoscaled {
            let name = services::route_name(&service.tenant, &service.name);
            let route = routes.iter().find(|route| route.service == name);
            let replicas = services::desired_replicas(job);
            let reading = self.autoscaling.read(job.id, spec, replicas, route, now);
            if let Some(cold) = reading.cold_start {
                let plural = if cold.waiting == 1 { "" } else { "s" };
                let message = format!(
                    "a replica was ready {:.2}s after the service scaled up from zero for {} \
                     waiting request{plural}",
                    cold.ms as f64 / 1000.0,
                    cold.waiting
                );
                store::add_event(&self.db, job, "ColdStart", Phase::Running, None, &message)?;
            }
            let count = match reading.scale {
                Some(decision) => self.scale_by_load(job, replicas, decision)?,
                None => replicas,
            };
            counts.push((job.id, count, spec));
        }
        self.autoscaling.schedule(now, &counts);
        Ok(())
    }

    /// Scales a service as its autoscaler decided, or as near as its
    /// tenant's quota allows; the replica count it has then.
    fn scale_by_load(&mut self, job: &JobRecord, replicas: u32, decision: Decision) -> Result<u32> {
        let mut count = decision.replicas;
        let mut refusal = None;
        // The largest count toward the decision that the quota could hold.
        while count != replicas {
            match rescale(&self.db, &self.capacity, job, count) {
                Ok(()) => break,
                Err(Error::QuotaExceeded(refused)) => {
                    refusal = Some(refused.message);
                    // A scale-down refused means the quota shrank below the
                    // service: it keeps what it has.
                    count = if count > replicas {
                        count - 1
                    } else {
                        replicas
                    };
                }
                Err(error) => return Err(error),
            }
        }
        if let Some(refusal) = refusal
            && count != decision.replicas
            && self.autoscaling.held_back(job.id, decision.replicas)
        {
            let message = format!(
                "the autoscaler asks for {} replicas ({}), held at {count}: {refusal}",
                decision.replicas, decision.reason
            );
            store::add_event(
                &self.db,
                job,
                "ScaleLimited",
                Phase::Running,
                None,
                &message,
            )?;
        }
        if count != replicas {
            if count == decision.replicas {
                self.autoscaling.scaled(job.id);
            }
            let message = format!("{replicas} -> {count} replicas: {}", decision.reason);
            store::add_event(&self.db, job, "Autoscaled", Phase::Running, None, &message)?;
            self.dirty.insert(job.id);
        }
        Ok(count)
    }

    /// Adds the rows (and ports) of a service's replicas up to its count;
    /// whether it added any.
    fn grow_service(&mut self, job: &JobRecord) -> Result<bool> {
        let desired = services::desired_replicas(job);
        let present: HashSet<u32> = store::replicas(&self.db, job.id)?
            .iter()
            .map(|r| r.index)
            .collect();
        let missing: Vec<u32> = (0..desired)
            .filter(|index| !present.contains(index))
            .collect();
        if missing.is_empty() {
            return Ok(false);
        }
        let mut ports = job.ports.clone();
        let mut in_use: HashSet<u16> = HashSet::new();
        for running in store::jobs(&self.db, None, &[Phase::Running])? {
            in_use.extend(running.ports.values().copied());
        }
        let names: Vec<String> = missing
            .iter()
            .map(|index| rendezvous::port_name(crate::spec::REPLICA_ROLE, *index))
            .filter(|name| !ports.contains_key(name))
            .collect();
        ports.extend(ports::allocate(names, &mut in_use)?);
        let tx = self.db.transaction()?;
        store::set_job_ports(&tx, job.id, &ports)?;
        for index in &missing {
            store::add_replica(&tx, job.id, crate::spec::REPLICA_ROLE, *index, 0)?;
        }
        store::add_event(
            &tx,
            job,
            "Scaled",
            Phase::Running,
            None,
            &format!("scaled to {desired} replicas: starting {}", missing.len()),
        )?;
        tx.commit()?;
        self.dirty.insert(job.id);
        Ok(true)
    }

    /// Stops a replica a service scaled down past, once drained.
    fn retire(&mut self, job_id: i64, index: u32) -> Result<()> {
        for (key, pid) in store::running_attempts_of_job(&self.db, job_id)? {
            if key.role == crate::spec::REPLICA_ROLE && key.index == index {
                ending::stop_attempt(&self.layout, key, pid, &mut self.stopping);
            }
        }
        Ok(())
    }

    /// Cancels users asked for since the last look.
    fn take_cancels(&mut self) -> Result<()> {
        for (id, phase) in store::cancels_asked(&self.db)? {
            let job = store::job_by_id(&self.db, id)?;
            if phase == Phase::Pending {
                self.finish(
                    &job,
                    Phase::Cancelled,
                    "Cancelled",
                    "cancelled before it started",
                )?;
            } else {
                store::begin_ending(
                    &self.db,
                    job.id,
                    Phase::Cancelled,
                    "Cancelled",
                    "cancelled by a user",
                )?;
                self.dirty.insert(id);
            }
        }
        Ok(())
    }

    /// Deadlines that passed and replicas whose restart backoff is over.
    fn take_due(&mut self, now: i64) -> Result<()> {
        let passed: Vec<i64> = self
            .deadlines
            .iter()
            .filter(|(_, due)| **due <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in passed {
            self.deadlines.remove(&id);
            let job = store::job_by_id(&self.db, id)?;
            if job.phase == Phase::Running && job.ending.is_none() {
                let limit = job.spec.active_deadline_seconds.unwrap_or(0);
                store::begin_ending(
                    &self.db,
                    job.id,
                    Phase::Failed,
                    "DeadlineExceeded",
                    &format!("active deadline of {limit}s exceeded"),
                )?;
                self.dirty.insert(id);
            }
        }
        self.dirty
            .extend(store::jobs_with_restart_due(&self.db, now)?);
        Ok(())
    }

    /// Admits what fits; each job admitted gets its deadline and a look
    /// as soon as it is Running, so that a failure later in the pass does
    /// not leave it forgotten.
    fn admit(&mut self) -> Result<()> {
        admit::admit(&self.db, self.capacity, &mut self.gpus, |job, started| {
            if let Some(at) = deadline(job, started) {
                self.deadlines.insert(job.id, at);
            }
            self.dirty.insert(job.id);
        })
    }

    /// Moves one job on: stops an ending job's replicas and finishes it once
    /// they are gone, or starts the replicas of a running one that are due.
    fn look_at(&mut self, id: i64, now: i64) -> Result<()> {
        let job = match store::job_by_id(&self.db, id) {
            Ok(job) => job,
            // Deleted meanwhile: nothing to do.
            Err(Error::NotFound { .. }) => return Ok(()),
            Err(error) => return Err(error),
        };
        if job.phase != Phase::Running {
            return Ok(());
        }
        if let Some((phase, reason, message)) = job.ending.clone() {
            ending::stop_replicas(&self.db, &self.layout, &job, &mut self.stopping)?;
            if ending::all_stopped(&self.db, job.id)? {
                self.finish(&job, phase, &reason, &message)?;
            }
            return Ok(());
        }
        if !job.volumes.is_empty() && !self.mounted.contains(&job.id) {
            if self.mounting.insert(job.id) {
                let (layout, messages, job) = (self.layout.clone(), self.messages.clone(), job);
                self.runtime.spawn(async move {
                    let outcome = volumes::mount_all(&layout, &job).await;
                    let _ = messages.send(Message::VolumesMounted(job.id, outcome));
                });
            }
            return Ok(());
        }
        let startup_ports = rendezvous::startup_ports(&job.spec);
        let ready = startup_ports.is_empty() || self.started.contains(&job.id);
        for replica in store::replicas(&self.db, job.id)? {
            let due = replica.next_start_ms.is_none_or(|at| at <= now);
            let allowed = ready || is_hidden_role(&job, &replica.role);
            if replica.phase == ReplicaPhase::Pending && due && allowed {
                let launched = launch::launch(
                    &self.db,
                    &self.layout,
                    &self.program,
                    &self.gpus,
                    &job,
                    &replica,
                )?;
                match launched {
                    Launched::Running(key, pid) => self.watch_supervisor(key, pid),
                    Launched::NotStarted(key) => {
                        let _ = self.messages.send(Message::AttemptEnded(key));
                    }
                }
            }
        }
        if !ready && self.starting.insert(job.id) {
            let ports: Vec<u16> = startup_ports
                .iter()
                .filter_map(|name| job.ports.get(name).copied())
                .collect();
            let messages = self.messages.clone();
            let job_id = job.id;
            self.runtime.spawn(async move {
                ports::wait_for_startup(&ports).await;
                let _ = messages.send(Message::StartupDone(job_id));
            });
        }
        Ok(())
    }

    /// Records the job's end and forgets what was kept for it while it ran;
    /// its capacity is free, so waiting jobs may start.
    fn finish(&mut self, job: &JobRecord, phase: Phase, reason: &str, message: &str) -> Result<()> {
        ending::finish(&self.db, job, phase, reason, message)?;
        if !job.volumes.is_empty() {
            crash_points::reached(self.layout.home(), CrashPoint::BeforeUnmount);
            for failure in volumes::unmount_below(&self.layout.volumes_dir(job.id)) {
                eprintln!("moon agent: job {}: {failure}", job.key());
            }
            self.mounted.remove(&job.id);
        }
        self.admission_due = true;
        self.deadlines.remove(&job.id);
        self.starting.remove(&job.id);
        self.started.remove(&job.id);
        Ok(())
    }
}

/// How long a service's replica may drain (finish the requests it has)
/// after a scale-down took it out of the route, before it is stopped anyway:
/// `MOON_SERVICE_DRAIN_SECONDS`, else 30 s (Kubernetes' default grace).
fn drain_deadline_ms() -> i64 {
    std::env::var(DRAIN_SECONDS_ENV)
        .ok()
        .and_then(|text| text.parse::<u32>().ok())
        .map_or(DEFAULT_DRAIN_MS, |seconds| i64::from(seconds) * 1000)
}

/// The variable that sets how long a service's replica may drain.
pub const DRAIN_SECONDS_ENV: &str = "MOON_SERVICE_DRAIN_SECONDS";
const DEFAULT_DRAIN_MS: i64 = 30_000;

/// When a job that started at `started_ms` must end, if it has a deadline.
fn deadline(job: &JobRecord, started_ms: i64) -> Option<i64> {
    job.spec
        .active_deadline_seconds
        .map(|limit| started_ms + limit as i64 * 1000)
}

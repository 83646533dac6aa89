//! The agent: one per `MOON_HOME`, started on demand by clients, gone when
//! idle. It admits jobs, launches a supervisor per replica attempt, applies
//! restart policies and deadlines, stops jobs, and streams events to
//! watchers. Everything it decides is committed to the database before it
//! acts, and on start it recovers from whatever a crash left half done.
//!
//! Its decisions run on a thread of their own, which owns the database
//! connection, while the socket is served on an async runtime beside it
//! (`agent_server`). The decision loop takes every message that waits
//! before it looks at the database again, and then looks only at the jobs
//! those messages concern: its work per event does not grow with the number
//! of jobs the home has seen.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::runtime::Handle;

use super::admission::{self, Candidate, Decision, Limits, Snapshot, Usage};
use super::agent_server::{Message, Server};
use super::capacity::{MachineGpus, machine_capacity_with};
use super::environment;
use super::event_hub::EventHub;
use super::layout::{Layout, attempt_files};
use super::private::{self, HomeInstance};
use super::process::{is_same_process, pidfd_open, reap, signal_group, signal_process, try_lock};
use super::retention;
use super::secrets;
use super::socket;
use super::store::{self, AttemptKey, Connection, JobRecord, ReplicaRecord, now_ms};
use super::supervisor::{self, AttemptPlan, Claim, ExitRecord};
use crate::backend::{Phase, ReplicaPhase};
use crate::error::{Error, Result};
use crate::rendezvous;
use crate::spec::{RestartPolicy, Role};
use moon_gpu::placement::MachineGpu;

/// Seconds a stopped replica gets between SIGTERM and SIGKILL.
const GRACE_SECONDS: u64 = 5;
/// First restart delay; doubled per restart of the job, up to `MAX_BACKOFF_MS`.
const FIRST_BACKOFF_MS: i64 = 1_000;
const MAX_BACKOFF_MS: i64 = 60_000;
/// An agent with no unfinished job and no watcher leaves after this long.
const DEFAULT_IDLE_SECONDS: u64 = 60;
/// How often the agent makes sure its home is still the one it started in.
const HOME_CHECK_INTERVAL: Duration = Duration::from_secs(1);
const LAST_SERVED: &str = "last_served_tenant";

/// How long the job's own replicas wait for its startup ports.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs the agent for `home` in this process; returns the process exit code.
///
/// The caller's stdout is a pipe to the client that started us: it gets one
/// line, `ready` or `busy` (another agent holds the home), then stdout and
/// stderr go to `agent.log`.
pub fn run(home: &Path, program: PathBuf) -> i32 {
    let layout = Layout::new(home);
    if let Err(error) = private::ensure_home(home) {
        println!("error cannot create {}: {error}", home.display());
        return 1;
    }
    let lock = match private::open_options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(layout.agent_lock())
    {
        Ok(file) => file,
        Err(error) => {
            println!(
                "error cannot open {}: {error}",
                layout.agent_lock().display()
            );
            return 1;
        }
    };
    match try_lock(&lock) {
        Ok(true) => {}
        Ok(false) => {
            println!("busy");
            return 0;
        }
        Err(error) => {
            println!(
                "error cannot lock {}: {error}",
                layout.agent_lock().display()
            );
            return 1;
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            println!("error cannot start a runtime: {error}");
            return 1;
        }
    };
    match serve(&runtime, layout, program, lock) {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("moon agent: {error}");
            1
        }
    }
}

fn serve(
    runtime: &tokio::runtime::Runtime,
    layout: Layout,
    program: PathBuf,
    _lock: File,
) -> Result<()> {
    let listener = bind(runtime, &layout)?;
    private::write(
        &layout.agent_pid(),
        std::process::id().to_string().as_bytes(),
    )
    .map_err(|error| Error::io("writing", layout.agent_pid(), error))?;

    let (sender, receiver) = mpsc::channel();
    let hub = Arc::new(EventHub::default());
    let mut agent = Agent::new(
        layout.clone(),
        program,
        sender.clone(),
        runtime.handle().clone(),
        hub.clone(),
    )?;
    let instance = HomeInstance::of(layout.home(), &layout.database())
        .map_err(|error| Error::io("reading", layout.home(), error))?;
    let server = Server {
        database: layout.database().into(),
        messages: sender,
        hub,
        watchers: Arc::new(AtomicUsize::new(0)),
        readers: Arc::new(Mutex::new(Vec::new())),
    };

    announce_ready(&layout);
    agent.recover()?;
    agent.reconcile()?;
    agent.publish_events();
    let mut acceptor = {
        let _entered = runtime.enter();
        server.accept(listener)
    };

    let idle = Duration::from_secs(
        std::env::var("MOON_AGENT_IDLE_SECONDS")
            .ok()
            .and_then(|text| text.parse().ok())
            .unwrap_or(DEFAULT_IDLE_SECONDS),
    );
    let mut idle_since = Instant::now();
    let mut home_checked = Instant::now();
    loop {
        let wake = agent.next_wake_ms().unwrap_or(None);
        let timeout = match wake {
            Some(at) => Duration::from_millis((at - now_ms()).max(0) as u64),
            None => idle,
        }
        .min(HOME_CHECK_INTERVAL);
        let first = match receiver.recv_timeout(timeout) {
            Ok(message) => Some(message),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return Ok(()),
        };
        // Everything that waits is taken before the next look at the
        // database: under load, one pass serves many events.
        let handled = first
            .into_iter()
            .chain(receiver.try_iter())
            .try_for_each(|message| agent.take(message));
        // A failure (a full disk, a locked database) is logged and retried on
        // the next event rather than taking the agent down with it.
        if let Err(error) = handled.and_then(|()| agent.reconcile()) {
            eprintln!("moon agent: {error}");
            agent.retry_soon();
        }
        agent.publish_events();

        if home_checked.elapsed() >= HOME_CHECK_INTERVAL {
            home_checked = Instant::now();
            if !instance.is_current(layout.home(), &layout.database()) {
                // The home was removed or replaced: what it held is gone, and
                // a client of the new one starts an agent of its own there.
                // Replicas still running keep their supervisors and end alone.
                eprintln!(
                    "moon agent: {} is no longer the home this agent started in; leaving",
                    layout.home().display()
                );
                acceptor.abort();
                return Ok(());
            }
        }

        if agent.has_unfinished_jobs().unwrap_or(true) || server.watchers.load(Ordering::SeqCst) > 0
        {
            idle_since = Instant::now();
        } else if idle_since.elapsed() >= idle {
            // Stop listening first, then look once more: a client may have
            // recorded a job and nudged us just before; if so, serve on.
            acceptor.abort();
            let _ = runtime.block_on(&mut acceptor);
            let nudged = receiver
                .try_iter()
                .try_for_each(|message| agent.take(message));
            if nudged.is_err() || agent.has_unfinished_jobs().unwrap_or(true) {
                let listener = bind(runtime, &layout)?;
                let _entered = runtime.enter();
                acceptor = server.accept(listener);
                idle_since = Instant::now();
                continue;
            }
            let _ = std::fs::remove_file(layout.agent_socket());
            let _ = std::fs::remove_file(layout.agent_pid());
            return Ok(());
        }
    }
}

fn bind(runtime: &tokio::runtime::Runtime, layout: &Layout) -> Result<tokio::net::UnixListener> {
    let failed = |error| Error::io("binding the agent socket", layout.agent_socket(), error);
    let listener = socket::bind(&layout.agent_socket()).map_err(failed)?;
    let _entered = runtime.enter();
    tokio::net::UnixListener::from_std(listener).map_err(failed)
}

/// Tells the starting client we listen, then sends our output to the log.
fn announce_ready(layout: &Layout) {
    println!("ready");
    let _ = io::stdout().flush();
    if let Ok(log) = private::append(&layout.agent_log()) {
        // SAFETY: dup2 onto our own stdout and stderr descriptors.
        unsafe {
            libc::dup2(log.as_raw_fd(), 1);
            libc::dup2(log.as_raw_fd(), 2);
        }
    }
}

/// The variable that tells CUDA which GPUs a process may use.
const CUDA_VISIBLE_DEVICES: &str = "CUDA_VISIBLE_DEVICES";

struct Agent {
    layout: Layout,
    program: PathBuf,
    db: Connection,
    capacity: Limits,
    /// Where the machine's GPUs are read from, when it has a source.
    gpu_source: Option<MachineGpus>,
    /// The machine's GPUs one by one as last read, health included.
    gpus: Option<Vec<MachineGpu>>,
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
}

impl Agent {
    fn new(
        layout: Layout,
        program: PathBuf,
        messages: mpsc::Sender<Message>,
        runtime: Handle,
        hub: Arc<EventHub>,
    ) -> Result<Agent> {
        let db = store::open(&layout.database())?;
        let gpu_source = MachineGpus::detect(true)?;
        let gpus = gpu_source.as_ref().map(MachineGpus::devices).transpose()?;
        let capacity = machine_capacity_with(&layout.config_file(), gpus.as_deref())?;
        let published = store::last_event_seq(&db)?;
        Ok(Agent {
            layout,
            program,
            db,
            capacity,
            gpu_source,
            gpus,
            messages,
            runtime,
            hub,
            published,
            watched: HashSet::new(),
            stopping: HashSet::new(),
            starting: HashSet::new(),
            started: HashSet::new(),
            dirty: BTreeSet::new(),
            admission_due: true,
            nudged: true,
            deadlines: HashMap::new(),
            retry_at: None,
        })
    }

    /// Crash tests kill the agent at chosen points: a file `faults/<point>`
    /// under the home makes the agent remove it and SIGKILL itself there, once.
    fn crash_point(&self, point: &str) {
        let trigger = self.layout.home().join("faults").join(point);
        if std::fs::remove_file(trigger).is_ok() {
            let _ = signal_process(std::process::id() as i32, Signal::SIGKILL);
        }
    }

    /// Takes one message: records what it says and notes what to look at.
    fn take(&mut self, message: Message) -> Result<()> {
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
        }
        Ok(())
    }

    /// After a failed pass, everything is looked at again shortly.
    fn retry_soon(&mut self) {
        self.retry_at = Some(now_ms() + 1_000);
        self.nudged = true;
        self.admission_due = true;
    }

    /// Hands the events committed since the last call to their watchers.
    fn publish_events(&mut self) {
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

    fn has_unfinished_jobs(&self) -> Result<bool> {
        store::has_unfinished_jobs(&self.db)
    }

    /// When something is next due: a restart after its backoff, a deadline,
    /// or a retry after a failed pass.
    fn next_wake_ms(&self) -> Result<Option<i64>> {
        let restart = store::next_restart_ms(&self.db)?;
        let expiry = retention::next_expiry_ms(&self.db)?;
        Ok([
            restart,
            self.deadlines.values().min().copied(),
            self.retry_at,
            expiry,
        ]
        .into_iter()
        .flatten()
        .min())
    }

    /// Picks up after a crash: every attempt that was launching or running
    /// is adopted, finished, or abandoned if no supervisor ever claimed it.
    fn recover(&mut self) -> Result<()> {
        for key in store::attempts_in_flight(&self.db)? {
            let dir = self.attempt_dir(&key);
            let claim = match supervisor::read_claim(&dir) {
                Some(claim) => Some(claim),
                None => {
                    let abandon = Claim { pid: 0, started: 0 };
                    match supervisor::claim_attempt(&dir, abandon) {
                        Ok(true) => None,
                        // A supervisor claimed it between our read and our claim.
                        _ => supervisor::read_claim(&dir),
                    }
                }
            };
            match claim {
                None | Some(Claim { pid: 0, .. }) => self.abandon(&key)?,
                Some(claim) => {
                    if supervisor::read_exit(&dir).is_none()
                        && is_same_process(claim.pid, claim.started)
                    {
                        store::mark_attempt_running(&self.db, &key, claim.pid)?;
                        self.watch_supervisor(key, claim.pid);
                    } else {
                        self.attempt_ended(&key)?;
                    }
                }
            }
        }
        // Every running job is looked at once, and its deadline noted.
        for job in store::jobs(&self.db, None, &[Phase::Running])? {
            self.note_deadline(&job);
            self.dirty.insert(job.id);
        }
        Ok(())
    }

    fn note_deadline(&mut self, job: &JobRecord) {
        if let (Some(started), Some(limit)) = (job.started_ms, job.spec.active_deadline_seconds) {
            self.deadlines.insert(job.id, started + limit as i64 * 1000);
        }
    }

    /// An attempt no supervisor ran: forget it, and the replica starts afresh.
    fn abandon(&mut self, key: &AttemptKey) -> Result<()> {
        let tx = self.db.transaction()?;
        store::abandon_attempt(&tx, key)?;
        tx.commit()
    }

    fn attempt_dir(&self, key: &AttemptKey) -> PathBuf {
        self.layout
            .attempt_dir(key.job_id, &key.replica(), key.attempt)
    }

    fn watch_supervisor(&mut self, key: AttemptKey, pid: i32) {
        if !self.watched.insert(key.clone()) {
            return;
        }
        let messages = self.messages.clone();
        match pidfd_open(pid) {
            Ok(fd) => {
                self.runtime.spawn(async move {
                    // SAFETY: the task owns the pidfd; it stays open as long as the AsyncFd.
                    if let Ok(exited) =
                        unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
                    {
                        let _ = exited.readable().await;
                    }
                    reap(pid);
                    let _ = messages.send(Message::AttemptEnded(key));
                });
            }
            Err(_) => {
                let _ = messages.send(Message::AttemptEnded(key));
            }
        }
    }

    /// Records how an attempt ended and decides what follows: the next
    /// attempt, the job's failure, or its success.
    fn attempt_ended(&mut self, key: &AttemptKey) -> Result<()> {
        self.watched.remove(key);
        self.stopping.remove(key);
        self.dirty.insert(key.job_id);
        // An attempt that cannot be looked up is left alone, as one that
        // already ended is.
        if !store::is_in_flight(&self.db, key).unwrap_or(false) {
            return Ok(());
        }
        self.crash_point("exit-observed");
        let dir = self.attempt_dir(key);
        let exit = supervisor::read_exit(&dir).unwrap_or_else(|| {
            // The supervisor died without a record; make sure nothing of the replica lives on.
            if let Some(group) = supervisor::read_group(&dir) {
                let _ = signal_group(group, Signal::SIGKILL);
            }
            ExitRecord {
                code: None,
                signal: None,
                finished_ms: now_ms(),
                error: Some("its supervisor died, so its exit status is unknown".into()),
            }
        });
        let job = store::job_by_id(&self.db, key.job_id)?;
        let replica = key.replica();
        let succeeded = exit.code == Some(0);
        let how = describe_exit(&exit);

        let tx = self.db.transaction()?;
        store::mark_attempt_exited(&tx, key)?;
        let set_replica = |phase: ReplicaPhase, next_start: Option<i64>| {
            store::record_replica_exit(&tx, key, phase, exit.code, exit.signal, next_start)
        };
        store::add_event(
            &tx,
            &job,
            "ReplicaExited",
            job.phase,
            Some(&replica),
            &format!("{replica} {how}"),
        )?;
        if job.ending.is_some() || job.phase.is_terminal() {
            set_replica(
                if succeeded {
                    ReplicaPhase::Succeeded
                } else {
                    ReplicaPhase::Stopped
                },
                None,
            )?;
        } else if succeeded {
            set_replica(ReplicaPhase::Succeeded, None)?;
            let deciders_left = store::replicas(&tx, job.id)?
                .iter()
                .filter(|other| {
                    other.phase != ReplicaPhase::Succeeded
                        && job.spec.framework.decides_success(&other.role)
                        && !is_hidden_role(&job, &other.role)
                })
                .count();
            if deciders_left == 0 {
                begin_ending(
                    &tx,
                    &job,
                    Phase::Succeeded,
                    "Completed",
                    "every replica that decides success exited 0",
                )?;
            }
        } else if job.spec.restart_policy == RestartPolicy::OnFailure
            && job.restarts < job.spec.backoff_limit
        {
            let delay = backoff_ms(job.restarts);
            set_replica(ReplicaPhase::Pending, Some(now_ms() + delay))?;
            store::count_restart(&tx, job.id)?;
            store::add_event(
                &tx,
                &job,
                "Restarting",
                job.phase,
                Some(&replica),
                &format!(
                    "restarting {replica} in {:.1}s (restart {} of {})",
                    delay as f64 / 1000.0,
                    job.restarts + 1,
                    job.spec.backoff_limit
                ),
            )?;
        } else {
            set_replica(ReplicaPhase::Failed, None)?;
            let reason = if job.spec.restart_policy == RestartPolicy::OnFailure {
                "BackoffLimitExceeded"
            } else {
                "ReplicaFailed"
            };
            let mut message = format!("replica {replica} {how}");
            if reason == "BackoffLimitExceeded" {
                let plural = if job.restarts == 1 { "" } else { "s" };
                message.push_str(&format!(" after {} restart{plural}", job.restarts));
            }
            begin_ending(&tx, &job, Phase::Failed, reason, &message)?;
        }
        tx.commit()
    }

    /// Brings the world in line with the database for what changed: cancels
    /// asked for, deadlines and restart backoffs that came due, admission
    /// when a job arrived or capacity came free, and each job a message
    /// concerned. A job that ends frees capacity, so passes repeat until one
    /// changes nothing.
    fn reconcile(&mut self) -> Result<()> {
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
                begin_ending(
                    &self.db,
                    &job,
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
                begin_ending(
                    &self.db,
                    &job,
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
            self.stop_replicas(&job)?;
            if self.active_attempts(job.id)? == 0 {
                self.finish(&job, phase, &reason, &message)?;
            }
            return Ok(());
        }
        let startup_ports = rendezvous::startup_ports(&job.spec);
        let ready = startup_ports.is_empty() || self.started.contains(&job.id);
        for replica in store::replicas(&self.db, job.id)? {
            let due = replica.next_start_ms.is_none_or(|at| at <= now);
            let allowed = ready || is_hidden_role(&job, &replica.role);
            if replica.phase == ReplicaPhase::Pending && due && allowed {
                self.launch(&job, &replica)?;
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
                wait_for_listeners(&ports, STARTUP_TIMEOUT).await;
                let _ = messages.send(Message::StartupDone(job_id));
            });
        }
        Ok(())
    }

    fn admit(&mut self) -> Result<()> {
        let active = store::active_jobs(&self.db)?;
        let pending: Vec<&store::ActiveJob> = active
            .iter()
            .filter(|job| job.phase == Phase::Pending && !job.cancel_requested)
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        let running: Vec<&store::ActiveJob> = active
            .iter()
            .filter(|job| job.phase == Phase::Running)
            .collect();
        // Health changes while the agent runs (an XID, ECC errors): read the
        // devices again before placing GPUs, so a failed one is not handed out.
        if let Some(source) = &self.gpu_source
            && pending.iter().any(|job| job.demand.gpus > 0)
        {
            self.gpus = Some(source.devices()?);
        }
        let held: HashSet<&String> = running
            .iter()
            .flat_map(|job| job.gpu_devices.values().flatten())
            .collect();
        let mut snapshot = Snapshot {
            machine: self.capacity,
            last_served: store::setting(&self.db, LAST_SERVED)?,
            devices: self.gpus.as_ref().map(|devices| {
                devices
                    .iter()
                    .map(|device| MachineGpu {
                        in_use: held.contains(&device.uuid),
                        ..device.clone()
                    })
                    .collect()
            }),
            ..Snapshot::default()
        };
        for tenant in store::tenants(&self.db)? {
            snapshot.tenants.insert(
                tenant.name.clone(),
                (Limits::of_quota(&tenant.quota), Usage::default()),
            );
        }
        let mut ports_in_use = HashSet::new();
        for job in &running {
            for usage in [
                &mut snapshot.machine_usage,
                &mut snapshot.tenants.entry(job.tenant.clone()).or_default().1,
            ] {
                usage.demand.millicores += job.demand.millicores;
                usage.demand.bytes += job.demand.bytes;
                usage.demand.gpus += job.demand.gpus;
                usage.jobs += 1;
            }
            ports_in_use.extend(job.ports.values().copied());
        }
        snapshot.queue = pending
            .iter()
            .map(|job| Candidate {
                id: job.id,
                tenant: job.tenant.clone(),
                name: job.name.clone(),
                demand: job.demand,
                gpus: job
                    .gpu_spec
                    .as_ref()
                    .map(admission::gpu_asks)
                    .unwrap_or_default(),
            })
            .collect();
        let by_id: HashMap<i64, &store::ActiveJob> =
            pending.iter().map(|job| (job.id, *job)).collect();
        for decision in admission::decide(&snapshot) {
            match decision {
                Decision::Admit { id, gpus } => {
                    if by_id.contains_key(&id) {
                        let job = store::job_by_id(&self.db, id)?;
                        self.start_job(&job, &mut ports_in_use, &gpus)?;
                    }
                }
                Decision::Wait {
                    id,
                    reason,
                    message,
                } => {
                    let Some(job) = by_id.get(&id) else {
                        continue;
                    };
                    if job.reason.as_deref() != Some(reason)
                        || job.message.as_deref() != Some(&message)
                    {
                        let record = store::job_by_id(&self.db, id)?;
                        let tx = self.db.transaction()?;
                        store::set_waiting(&tx, id, reason, &message)?;
                        store::add_event(&tx, &record, "Pending", Phase::Pending, None, &message)?;
                        tx.commit()?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Admits a job: ports, replica rows and the Running phase, in one transaction.
    fn start_job(
        &mut self,
        job: &JobRecord,
        ports_in_use: &mut HashSet<u16>,
        gpus: &BTreeMap<String, Vec<String>>,
    ) -> Result<()> {
        let mut ports = BTreeMap::new();
        for name in rendezvous::port_names(&job.spec) {
            let port = moon_net::free_loopback_port(ports_in_use)
                .map_err(|error| Error::io("finding a free port", "127.0.0.1", error))?;
            ports_in_use.insert(port);
            ports.insert(name, port);
        }
        let tracker_port = ports.get("tracker").copied().unwrap_or(0);
        let roles: Vec<Role> = job
            .spec
            .roles
            .iter()
            .cloned()
            .chain(rendezvous::hidden_roles(
                &job.spec,
                "127.0.0.1",
                tracker_port,
            ))
            .collect();
        let started = now_ms();
        let tx = self.db.transaction()?;
        store::mark_job_running(&tx, job.id, started, &ports, gpus)?;
        for (position, role) in roles.iter().enumerate() {
            for index in 0..role.replicas {
                store::add_replica(&tx, job.id, &role.name, index, position)?;
            }
        }
        store::add_event(
            &tx,
            job,
            "Admitted",
            Phase::Running,
            None,
            &format!(
                "admitted; starting {} replicas",
                roles.iter().map(|r| r.replicas).sum::<u32>()
            ),
        )?;
        store::set_setting(&tx, LAST_SERVED, &job.spec.tenant)?;
        tx.commit()?;
        if let Some(limit) = job.spec.active_deadline_seconds {
            self.deadlines.insert(job.id, started + limit as i64 * 1000);
        }
        self.dirty.insert(job.id);
        Ok(())
    }

    /// Starts one attempt of a replica. The attempt is recorded before its
    /// supervisor starts, and the supervisor claims it before running
    /// anything, so a crash anywhere in between never runs it twice.
    fn launch(&mut self, job: &JobRecord, replica: &ReplicaRecord) -> Result<()> {
        let name = replica.name();
        let attempt = store::next_attempt(&self.db, job.id, &replica.role, replica.index)?;
        let key = AttemptKey {
            job_id: job.id,
            role: replica.role.clone(),
            index: replica.index,
            attempt,
        };
        let dir = self.attempt_dir(&key);
        private::create_dir_all(&dir).map_err(|error| Error::io("creating", &dir, error))?;
        let plan = self.plan(job, &replica.role, replica.index, attempt)?;
        let plan_bytes =
            serde_json::to_vec_pretty(&plan).map_err(|error| Error::Agent(error.to_string()))?;
        supervisor::write_visibly(&dir.join(attempt_files::PLAN), &plan_bytes)
            .map_err(|error| Error::io("writing", dir.join(attempt_files::PLAN), error))?;

        let tx = self.db.transaction()?;
        store::record_launch(&tx, &key, now_ms())?;
        tx.commit()?;
        self.crash_point("before-spawn");

        let mut command = Command::new(&self.program);
        command
            .arg("__supervise")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: setsid is async-signal-safe; the supervisor gets its own
        // session so that signals meant for the agent's group spare it.
        unsafe {
            command.pre_exec(|| nix::unistd::setsid().map(|_| ()).map_err(io::Error::from));
        }
        let pid = match command.spawn() {
            Ok(child) => child.id() as i32,
            Err(error) => {
                let exit = ExitRecord {
                    code: None,
                    signal: None,
                    finished_ms: now_ms(),
                    error: Some(format!(
                        "cannot start its supervisor {}: {error}",
                        self.program.display()
                    )),
                };
                let bytes = serde_json::to_vec(&exit).unwrap_or_default();
                let _ = supervisor::write_atomically(&dir.join(attempt_files::EXIT), &bytes);
                let _ = self.messages.send(Message::AttemptEnded(key));
                return Ok(());
            }
        };
        let tx = self.db.transaction()?;
        store::mark_attempt_running(&tx, &key, pid)?;
        store::add_event(
            &tx,
            job,
            "ReplicaStarted",
            Phase::Running,
            Some(&name),
            &format!("{name} started (attempt {attempt})"),
        )?;
        tx.commit()?;
        self.watch_supervisor(key, pid);
        Ok(())
    }

    /// The command, environment and directory of one attempt.
    fn plan(
        &self,
        job: &JobRecord,
        role_name: &str,
        index: u32,
        attempt: u32,
    ) -> Result<AttemptPlan> {
        let tracker_port = job.ports.get("tracker").copied().unwrap_or(0);
        let hidden = rendezvous::hidden_roles(&job.spec, "127.0.0.1", tracker_port);
        let role = job
            .spec
            .roles
            .iter()
            .chain(hidden.iter())
            .find(|role| role.name == role_name)
            .ok_or_else(|| Error::Agent(format!("job {} has no role {role_name:?}", job.key())))?;
        let endpoints =
            rendezvous::Endpoints::new(|_, _| "127.0.0.1".to_string(), job.ports.clone());
        let inherited = environment::inherited(&job.submit_env, role);
        let env_from = secrets::sources(&self.layout, &job.spec.tenant, role);
        let mut env = role.env.clone();
        env.extend(rendezvous::replica_env(
            &job.spec, role_name, index, &endpoints,
        ));
        env.insert("MOON_ATTEMPT".into(), attempt.to_string());
        if self.gpus.is_some() {
            // By UUID: CUDA numbers devices its own way, which need not be
            // NVML's; a replica given none sees none.
            let replica = format!("{role_name}-{index}");
            let devices = job.gpu_devices.get(&replica).cloned().unwrap_or_default();
            env.insert(CUDA_VISIBLE_DEVICES.into(), devices.join(","));
        }
        let submit_dir = PathBuf::from(&job.submit_dir);
        let working_dir = match &role.working_dir {
            Some(dir) => submit_dir.join(dir),
            None => submit_dir,
        };
        let replica = format!("{role_name}-{index}");
        Ok(AttemptPlan {
            log: self.layout.replica_log(job.id, &replica),
            replica,
            argv: role.argv(),
            env,
            inherited,
            env_from,
            working_dir,
            grace_seconds: GRACE_SECONDS,
        })
    }

    fn active_attempts(&self, job_id: i64) -> Result<i64> {
        store::count_attempts_in_flight(&self.db, job_id)
    }

    /// Asks every running attempt of an ending job to stop; pending replicas never start.
    fn stop_replicas(&mut self, job: &JobRecord) -> Result<()> {
        store::stop_pending_replicas(&self.db, job.id)?;
        for (key, pid) in store::running_attempts_of_job(&self.db, job.id)? {
            if self.stopping.contains(&key) {
                continue;
            }
            if let Some(pid) = pid {
                let dir = self.attempt_dir(&key);
                let ours = supervisor::read_claim(&dir)
                    .is_some_and(|claim| claim.pid == pid && is_same_process(pid, claim.started));
                if ours {
                    let _ = signal_process(pid, Signal::SIGTERM);
                }
                self.stopping.insert(key);
            }
        }
        Ok(())
    }

    fn finish(&mut self, job: &JobRecord, phase: Phase, reason: &str, message: &str) -> Result<()> {
        let finished = now_ms();
        let expires = job
            .spec
            .ttl_seconds_after_finished
            .map(|ttl| finished.saturating_add((ttl as i64).saturating_mul(1000)));
        let tx = self.db.transaction()?;
        store::mark_job_finished(&tx, job.id, phase, reason, message, finished, expires)?;
        store::stop_unfinished_replicas(&tx, job.id)?;
        store::add_event(&tx, job, phase.as_str(), phase, None, message)?;
        tx.commit()?;
        // Its capacity is free: waiting jobs may start.
        self.admission_due = true;
        self.deadlines.remove(&job.id);
        self.starting.remove(&job.id);
        self.started.remove(&job.id);
        Ok(())
    }
}

/// Marks a job as ending: its replicas are stopped, then it takes `phase`.
fn begin_ending(
    db: &Connection,
    job: &JobRecord,
    phase: Phase,
    reason: &str,
    message: &str,
) -> Result<()> {
    store::begin_ending(db, job.id, phase, reason, message)
}

/// Waits until every port listens on this machine, looking at the kernel's
/// socket tables rather than connecting: a probe connection would look like
/// a worker to XGBoost's tracker. Gives up after `limit`.
async fn wait_for_listeners(ports: &[u16], limit: Duration) {
    let deadline = Instant::now() + limit;
    let mut delay = Duration::from_millis(5);
    loop {
        let listening = listening_ports();
        if ports.iter().all(|port| listening.contains(port)) || Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(200));
    }
}

/// TCP ports in LISTEN state, from `/proc/net/tcp` and `/proc/net/tcp6`.
fn listening_ports() -> HashSet<u16> {
    const LISTEN: &str = "0A";
    let mut ports = HashSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let mut fields = line.split_whitespace();
            let (Some(local), Some(_remote), Some(state)) =
                (fields.nth(1), fields.next(), fields.next())
            else {
                continue;
            };
            if state == LISTEN
                && let Some((_, port)) = local.rsplit_once(':')
                && let Ok(port) = u16::from_str_radix(port, 16)
            {
                ports.insert(port);
            }
        }
    }
    ports
}

fn is_hidden_role(job: &JobRecord, role: &str) -> bool {
    !job.spec
        .roles
        .iter()
        .any(|spec_role| spec_role.name == role)
}

fn backoff_ms(restarts: u32) -> i64 {
    FIRST_BACKOFF_MS
        .saturating_mul(1 << restarts.min(16))
        .min(MAX_BACKOFF_MS)
}

fn describe_exit(exit: &ExitRecord) -> String {
    match (exit.code, exit.signal, &exit.error) {
        (_, _, Some(error)) if exit.code.is_none() => format!("ended: {error}"),
        (Some(code), _, Some(error)) => format!("exited with code {code}: {error}"),
        (Some(code), _, None) => format!("exited with code {code}"),
        (None, Some(signal), _) => format!("was killed by signal {signal}"),
        (None, None, _) => "ended".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bound_listener_shows_in_the_kernel_tables() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        assert!(listening_ports().contains(&port));
        drop(listener);
        assert!(!listening_ports().contains(&port));
    }

    #[test]
    fn backoff_doubles_up_to_a_minute() {
        assert_eq!(backoff_ms(0), 1_000);
        assert_eq!(backoff_ms(1), 2_000);
        assert_eq!(backoff_ms(5), 32_000);
        assert_eq!(backoff_ms(6), 60_000);
        assert_eq!(backoff_ms(40), 60_000);
    }
}

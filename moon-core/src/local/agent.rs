//! The agent: one per `MOON_HOME`, started on demand by clients, gone when
//! idle. It admits jobs, launches a supervisor per replica attempt, applies
//! restart policies and deadlines, stops jobs, and streams events to
//! watchers; on start it recovers from whatever a crash left half done.
//!
//! This is the process around those decisions (`reconcile`): the home's
//! lock, which makes the agent the only one, the socket, served on an async
//! runtime (`agent_server`), and the loop on the process's own thread that
//! hands what comes from the socket to the decisions, which own the
//! database connection, until the agent is idle or its home is gone.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::agent_server::Server;
use super::event_hub::EventHub;
use super::layout::Layout;
use super::private::{self, HomeInstance};
use super::process::try_lock;
use super::reconcile::Agent;
use super::socket;
use super::store::now_ms;
use crate::error::{Error, Result};

/// An agent with no unfinished job and no watcher leaves after this long.
const DEFAULT_IDLE_SECONDS: u64 = 60;
/// How often the agent makes sure its home is still the one it started in.
const HOME_CHECK_INTERVAL: Duration = Duration::from_secs(1);

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
    if let Err(error) = agent.sync_services() {
        eprintln!("moon agent: {error}");
        agent.retry_soon();
    }
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
        let passed = handled
            .and_then(|()| agent.reconcile())
            .and_then(|()| agent.sync_services());
        if let Err(error) = passed {
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

//! The home's proxy process: started by the agent when a service runs, in a
//! session of its own so that it outlives the agent (a service's URL keeps
//! answering while the agent is down or restarting), and found again by the
//! next agent through `proxy.json` (its pid, start time and admin address).
//! The agent keeps its routes equal to the running services' after each pass.

use std::collections::{BTreeMap, HashSet};
use std::io;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use moon_net::proxy::{AdminClient, Route, RouteStatus};
use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};
use tokio::runtime::Handle;

use super::layout::Layout;
use super::private;
use super::process::{is_same_process, reap, signal_process, start_time};
use crate::error::{Error, Result};

/// How long a new proxy may take to answer its admin API.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// What `proxy.json` says of the running proxy.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct ProxyRecord {
    pid: i32,
    /// Its start time (`/proc/PID/stat`): with the pid, it names one process.
    started: u64,
    admin: SocketAddr,
}

/// The agent's handle on the home's proxy.
#[derive(Debug)]
pub struct LocalProxy {
    layout: Layout,
    program: PathBuf,
    record: Option<ProxyRecord>,
    /// Routes as last pushed to the running proxy.
    pushed: BTreeMap<String, Route>,
}

impl LocalProxy {
    /// The proxy of `layout`'s home, started with `program` when needed; one
    /// that a previous agent left running is used again.
    pub fn new(layout: Layout, program: PathBuf) -> Self {
        let record = std::fs::read(proxy_file(&layout))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
        LocalProxy {
            layout,
            program,
            record,
            pushed: BTreeMap::new(),
        }
    }

    /// The admin API of the home's proxy, if one runs (read by clients).
    pub fn running_admin(layout: &Layout) -> Option<AdminClient> {
        let bytes = std::fs::read(proxy_file(layout)).ok()?;
        let record: ProxyRecord = serde_json::from_slice(&bytes).ok()?;
        is_same_process(record.pid, record.started).then(|| AdminClient::new(record.admin))
    }

    fn alive(&mut self) -> Option<AdminClient> {
        let record = self.record?;
        reap(record.pid);
        if is_same_process(record.pid, record.started) {
            Some(AdminClient::new(record.admin))
        } else {
            self.record = None;
            self.pushed.clear();
            None
        }
    }

    /// Makes the proxy serve exactly `routes`: started if it is not running,
    /// each route pushed when it changed, routes of services that are gone
    /// removed; with no route left, the proxy is stopped.
    pub fn sync(&mut self, runtime: &Handle, routes: Vec<Route>) -> Result<()> {
        if routes.is_empty() {
            self.stop();
            return Ok(());
        }
        let admin = match self.alive() {
            Some(admin) => admin,
            None => self.start(runtime)?,
        };
        let wanted: HashSet<String> = routes.iter().map(|r| r.service.clone()).collect();
        for route in routes {
            if self.pushed.get(&route.service) == Some(&route) {
                continue;
            }
            runtime
                .block_on(admin.put_route(&route))
                .map_err(proxy_error)?;
            self.pushed.insert(route.service.clone(), route);
        }
        let gone: Vec<String> = self
            .pushed
            .keys()
            .filter(|name| !wanted.contains(*name))
            .cloned()
            .collect();
        for name in gone {
            runtime
                .block_on(admin.delete_route(&name))
                .map_err(proxy_error)?;
            self.pushed.remove(&name);
        }
        Ok(())
    }

    /// Every route's status as the running proxy sees it (none if it does
    /// not run).
    pub fn statuses(&mut self, runtime: &Handle) -> Result<Vec<RouteStatus>> {
        match self.alive() {
            Some(admin) => runtime.block_on(admin.routes()).map_err(proxy_error),
            None => Ok(Vec::new()),
        }
    }

    fn start(&mut self, runtime: &Handle) -> Result<AdminClient> {
        let port = moon_net::free_loopback_port(&HashSet::new())
            .map_err(|error| Error::io("finding a free port", "127.0.0.1", error))?;
        let admin = SocketAddr::from(([127, 0, 0, 1], port));
        let log = private::append(&self.layout.home().join("proxy.log"))
            .map_err(|error| Error::io("opening", self.layout.home().join("proxy.log"), error))?;
        let log_err = log
            .try_clone()
            .map_err(|error| Error::io("opening", "proxy.log", error))?;
        let mut command = Command::new(&self.program);
        command
            .arg("__proxy")
            .arg(admin.to_string())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        // SAFETY: setsid is async-signal-safe; a session of its own spares the
        // proxy the signals meant for the agent's group, and it outlives the agent.
        unsafe {
            command.pre_exec(|| nix::unistd::setsid().map(|_| ()).map_err(io::Error::from));
        }
        let child = command
            .spawn()
            .map_err(|error| Error::io("starting the proxy", &self.program, error))?;
        let pid = child.id() as i32;
        let started = start_time(pid).unwrap_or(0);
        let record = ProxyRecord {
            pid,
            started,
            admin,
        };
        let bytes = serde_json::to_vec(&record).map_err(|error| Error::Agent(error.to_string()))?;
        private::write(&proxy_file(&self.layout), &bytes)
            .map_err(|error| Error::io("writing", proxy_file(&self.layout), error))?;
        self.record = Some(record);
        self.pushed.clear();
        let client = AdminClient::new(admin);
        let deadline = Instant::now() + START_TIMEOUT;
        while !runtime.block_on(client.is_up()) {
            reap(pid);
            if !is_same_process(pid, started) || Instant::now() >= deadline {
                return Err(Error::Agent(format!(
                    "the proxy did not start (see {})",
                    self.layout.home().join("proxy.log").display()
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(client)
    }

    /// Stops the proxy, if it runs: open connections finish their requests.
    pub fn stop(&mut self) {
        if let Some(record) = self.record.take() {
            if is_same_process(record.pid, record.started) {
                let _ = signal_process(record.pid, Signal::SIGTERM);
            }
            reap(record.pid);
            let _ = std::fs::remove_file(proxy_file(&self.layout));
        }
        self.pushed.clear();
    }
}

fn proxy_file(layout: &Layout) -> PathBuf {
    layout.home().join("proxy.json")
}

fn proxy_error(error: moon_net::Error) -> Error {
    Error::Agent(format!("the services' proxy: {error}"))
}

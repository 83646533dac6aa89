//! The local backend: jobs as supervised process groups on this machine.
//!
//! Shape (see `docs/local-backend.md`):
//! - clients (the SDK, the CLI) record intents in a SQLite database under
//!   `MOON_HOME` and nudge the agent over a Unix socket;
//! - one agent per `MOON_HOME`, started on demand, admits jobs, starts a
//!   supervisor per replica attempt, enforces restarts and deadlines and
//!   publishes events;
//! - a supervisor per replica attempt owns the replica's process group,
//!   timestamps its output into a log file and records its exit status
//!   atomically, so that nothing is lost when the agent or a client dies.

use std::path::PathBuf;

use crate::error::{Error, Result, rule};

/// Settings of the local backend.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    /// Where state, logs and the agent's socket live (`MOON_HOME`, default `~/.moon`).
    pub home: PathBuf,
    /// The program started as the agent and as replica supervisors; it must
    /// call [`run_hidden_command`] first thing in `main`. Defaults to
    /// `MOON_AGENT_PROGRAM`, else the running program.
    pub agent_program: PathBuf,
}

impl LocalConfig {
    /// Settings from `MOON_HOME` and `MOON_AGENT_PROGRAM`.
    pub fn from_env() -> Result<LocalConfig> {
        let home = match std::env::var_os("MOON_HOME") {
            Some(home) if !home.is_empty() => PathBuf::from(home),
            _ => {
                let user_home = std::env::var_os("HOME").ok_or_else(|| {
                    Error::invalid(
                        "config",
                        "MOON_HOME",
                        rule::REQUIRED,
                        "neither MOON_HOME nor HOME is set",
                    )
                })?;
                PathBuf::from(user_home).join(".moon")
            }
        };
        let agent_program = match std::env::var_os("MOON_AGENT_PROGRAM") {
            Some(program) if !program.is_empty() => PathBuf::from(program),
            _ => std::env::current_exe().map_err(|error| {
                Error::io("finding the running program", "/proc/self/exe", error)
            })?,
        };
        Ok(LocalConfig {
            home,
            agent_program,
        })
    }
}

pub mod admission;
mod admit;
mod agent;
mod agent_client;
mod agent_server;
mod autoscaling;
mod backend;
mod capacity;
mod crash_points;
mod ending;
pub mod environment;
mod event_hub;
mod exits;
mod gpus;
mod launch;
mod layout;
mod ports;
mod private;
mod process;
mod protocol;
mod proxy;
mod reconcile;
mod recovery;
mod rescale;
mod retention;
mod secrets;
mod services;
mod socket;
mod store;
mod supervisor;
mod volumes;

pub use backend::LocalBackend;
pub use capacity::machine_capacity;
pub use layout::Layout;

/// Runs moon's hidden commands (the agent, a replica supervisor) when the
/// program was started as one; call it first thing in `main`, before any
/// thread starts. Returns the exit code to leave with, or `None` for a
/// normal start.
pub fn run_hidden_command() -> Option<i32> {
    let mut args = std::env::args_os().skip(1);
    let command = args.next()?;
    match command.to_str()? {
        "__agent" => {
            let home = PathBuf::from(args.next()?);
            // Detach: the starting client reaps our parent at once, and we
            // live on in a session of our own, adopted by init.
            // SAFETY: no thread has started yet, so the child may do anything.
            match unsafe { nix::unistd::fork() } {
                Ok(nix::unistd::ForkResult::Parent { .. }) => Some(0),
                Ok(nix::unistd::ForkResult::Child) => {
                    let _ = nix::unistd::setsid();
                    let program = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("moon"));
                    Some(agent::run(&home, program))
                }
                Err(error) => {
                    println!("error cannot fork the agent: {error}");
                    Some(1)
                }
            }
        }
        "__supervise" => Some(supervisor::run(std::path::Path::new(&args.next()?))),
        "__proxy" => {
            let admin = args.next()?.to_str()?.parse().ok()?;
            let options = moon_net::proxy::ProxyOptions {
                admin,
                routes: Vec::new(),
                threads: 1,
            };
            Some(match moon_net::proxy::run(options) {
                Ok(()) => 0,
                Err(error) => {
                    eprintln!("moon proxy: {error}");
                    1
                }
            })
        }
        _ => None,
    }
}

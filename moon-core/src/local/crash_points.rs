//! Places where a crash of the agent could lose or repeat work, named so
//! that crash tests can kill the agent right there: a file
//! `faults/<point>` under the home makes the agent remove it and SIGKILL
//! itself at that point, once.

use std::path::Path;

use nix::sys::signal::Signal;

use super::process::signal_process;

/// A point in the agent's work where a crash is tested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// An attempt is recorded, and its supervisor not started yet.
    BeforeSpawn,
    /// A supervisor exited, and what follows is not recorded yet.
    ExitObserved,
}

impl CrashPoint {
    /// The name of its file under `faults/`.
    fn file_name(self) -> &'static str {
        match self {
            CrashPoint::BeforeSpawn => "before-spawn",
            CrashPoint::ExitObserved => "exit-observed",
        }
    }
}

/// Kills the agent here if a crash test armed `point` in `home`.
pub fn reached(home: &Path, point: CrashPoint) {
    let trigger = home.join("faults").join(point.file_name());
    if std::fs::remove_file(trigger).is_ok() {
        let _ = signal_process(std::process::id() as i32, Signal::SIGKILL);
    }
}

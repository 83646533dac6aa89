//! Places where a crash of the agent could lose or repeat work, named so
//! that crash tests can kill the agent right there: in an agent built with
//! the `crash-points` feature, a file `faults/<point>` under the home makes
//! the agent remove it and SIGKILL itself at that point, once.
//!
//! Only the `moon-crash-agent` program of the crash tests is built with the
//! feature. Everywhere else `reached` is empty and inlined away, so that no
//! shipped agent looks for such files, let alone kills itself.

use std::path::Path;

/// A point in the agent's work where a crash is tested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// An attempt is recorded, and its supervisor not started yet.
    BeforeSpawn,
    /// A supervisor exited, and what follows is not recorded yet.
    ExitObserved,
    /// A job with volumes is recorded as ended, and its volumes are still mounted.
    BeforeUnmount,
}

/// Kills the agent here if a crash test armed `point` in `home`.
#[cfg(feature = "crash-points")]
pub fn reached(home: &Path, point: CrashPoint) {
    use nix::sys::signal::Signal;

    use super::process::signal_process;

    let file = match point {
        CrashPoint::BeforeSpawn => "before-spawn",
        CrashPoint::ExitObserved => "exit-observed",
        CrashPoint::BeforeUnmount => "before-unmount",
    };
    if std::fs::remove_file(home.join("faults").join(file)).is_ok() {
        let _ = signal_process(std::process::id() as i32, Signal::SIGKILL);
    }
}

/// Crash points are not built into this agent.
#[cfg(not(feature = "crash-points"))]
#[inline(always)]
pub fn reached(_home: &Path, _point: CrashPoint) {}

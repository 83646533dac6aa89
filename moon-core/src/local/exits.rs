//! How attempts end: noticing that a supervisor exited (its pidfd becomes
//! readable on the agent's runtime), then recording how its attempt ended
//! and deciding what follows, in one transaction: the replica's restart
//! after a backoff, the job's failure, or its success once every replica
//! that decides success has exited 0.

use std::sync::mpsc;

use nix::sys::signal::Signal;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::runtime::Handle;

use super::agent_server::Message;
use super::crash_points::{self, CrashPoint};
use super::launch::is_hidden_role;
use super::layout::Layout;
use super::process::{pidfd_open, reap, signal_group};
use super::services;
use super::store::{self, AttemptKey, Connection, now_ms};
use super::supervisor::{self, ExitRecord};
use crate::backend::{Phase, ReplicaPhase};
use crate::error::Result;
use crate::spec::RestartPolicy;

/// First restart delay; doubled per restart of the job, up to `MAX_BACKOFF_MS`.
const FIRST_BACKOFF_MS: i64 = 1_000;
const MAX_BACKOFF_MS: i64 = 60_000;

/// Sends `AttemptEnded(key)` to the agent's loop once supervisor `pid`
/// has exited (at once if it cannot be watched), and reaps it.
pub fn watch_supervisor(
    runtime: &Handle,
    messages: &mpsc::Sender<Message>,
    key: AttemptKey,
    pid: i32,
) {
    let messages = messages.clone();
    match pidfd_open(pid) {
        Ok(fd) => {
            runtime.spawn(async move {
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
/// attempt, the job's failure, or its success. An attempt no longer in
/// flight (recorded already), or that cannot be looked up, is left alone.
pub fn record_exit(db: &Connection, layout: &Layout, key: &AttemptKey) -> Result<()> {
    if !store::is_in_flight(db, key).unwrap_or(false) {
        return Ok(());
    }
    crash_points::reached(layout.home(), CrashPoint::ExitObserved);
    let dir = layout.attempt_dir(key);
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
    let job = store::job_by_id(db, key.job_id)?;
    let replica = key.replica();
    let succeeded = exit.code == Some(0);
    let how = describe_exit(&exit);

    let tx = db.transaction()?;
    store::mark_attempt_exited(&tx, key)?;
    let set_replica = |phase: ReplicaPhase, next_start: Option<i64>| {
        store::record_replica_exit(&tx, key, phase, exit.code, exit.signal, next_start)
    };
    // The replica starts again after the job's backoff; `count` says which
    // restart this is, for the event.
    let restart = |count: &str| -> Result<()> {
        let delay = backoff_ms(job.restarts);
        set_replica(ReplicaPhase::Pending, Some(now_ms() + delay))?;
        store::count_restart(&tx, job.id)?;
        let seconds = delay as f64 / 1000.0;
        let message = format!("restarting {replica} in {seconds:.1}s{count}");
        store::add_event(&tx, &job, "Restarting", job.phase, Some(&replica), &message)?;
        Ok(())
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
    } else if job.service.is_some() && key.index >= services::desired_replicas(&job) {
        // Scaled down past it: it is not started again.
        store::delete_replica(&tx, job.id, &key.role, key.index)?;
        let message = format!("{replica} retired: the service scaled down");
        store::add_event(
            &tx,
            &job,
            "ReplicaRetired",
            job.phase,
            Some(&replica),
            &message,
        )?;
    } else if job.service.is_some() {
        // A service's replica is started again however it ended: a
        // service runs until it is deleted.
        restart("")?;
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
            store::begin_ending(
                &tx,
                job.id,
                Phase::Succeeded,
                "Completed",
                "every replica that decides success exited 0",
            )?;
        }
    } else if job.spec.restart_policy == RestartPolicy::OnFailure
        && job.restarts < job.spec.backoff_limit
    {
        restart(&format!(
            " (restart {} of {})",
            job.restarts + 1,
            job.spec.backoff_limit
        ))?;
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
        store::begin_ending(&tx, job.id, Phase::Failed, reason, &message)?;
    }
    tx.commit()
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
    fn backoff_doubles_up_to_a_minute() {
        assert_eq!(backoff_ms(0), 1_000);
        assert_eq!(backoff_ms(1), 2_000);
        assert_eq!(backoff_ms(5), 32_000);
        assert_eq!(backoff_ms(6), 60_000);
        assert_eq!(backoff_ms(40), 60_000);
    }
}

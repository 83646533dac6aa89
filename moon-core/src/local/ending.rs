//! Ending a job, in two steps so that nothing of it outlives its end: an
//! ending job (cancelled, failed, past its deadline, or done) first has its
//! replicas stopped, and only once no attempt of it is in flight does it
//! take its final phase, which frees its capacity.

use std::collections::HashSet;

use nix::sys::signal::Signal;

use super::layout::Layout;
use super::process::{is_same_process, signal_process};
use super::store::{self, AttemptKey, Connection, JobRecord, now_ms};
use super::supervisor;
use crate::backend::Phase;
use crate::error::Result;

/// Asks every running attempt of an ending job to stop, once (those in
/// `stopping` were asked already); pending replicas never start.
pub fn stop_replicas(
    db: &Connection,
    layout: &Layout,
    job: &JobRecord,
    stopping: &mut HashSet<AttemptKey>,
) -> Result<()> {
    store::stop_pending_replicas(db, job.id)?;
    for (key, pid) in store::running_attempts_of_job(db, job.id)? {
        if stopping.contains(&key) {
            continue;
        }
        if let Some(pid) = pid {
            // SIGTERM to the supervisor, which passes it on to the replica's
            // group and kills it after the grace; a pid that is no longer
            // our supervisor's is left alone.
            let ours = supervisor::read_claim(&layout.attempt_dir(&key))
                .is_some_and(|claim| claim.pid == pid && is_same_process(pid, claim.started));
            if ours {
                let _ = signal_process(pid, Signal::SIGTERM);
            }
            stopping.insert(key);
        }
    }
    Ok(())
}

/// Whether every attempt of the job has ended.
pub fn all_stopped(db: &Connection, job_id: i64) -> Result<bool> {
    Ok(store::count_attempts_in_flight(db, job_id)? == 0)
}

/// Records the job's end: its phase, why, its replicas that had not ended
/// stopped, and when it expires if it has a time to live.
pub fn finish(
    db: &Connection,
    job: &JobRecord,
    phase: Phase,
    reason: &str,
    message: &str,
) -> Result<()> {
    let finished = now_ms();
    let expires = job
        .spec
        .ttl_seconds_after_finished
        .map(|ttl| finished.saturating_add((ttl as i64).saturating_mul(1000)));
    let tx = db.transaction()?;
    store::mark_job_finished(&tx, job.id, phase, reason, message, finished, expires)?;
    store::stop_unfinished_replicas(&tx, job.id)?;
    store::add_event(&tx, job, phase.as_str(), phase, None, message)?;
    tx.commit()
}

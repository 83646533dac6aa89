//! Ending a job, in two steps so that nothing of it outlives its end: an
//! ending job (cancelled, failed, past its deadline, or done) first has its
//! replicas stopped, and only once no attempt of it is in flight does it
//! take its final phase, which frees its capacity.

use std::collections::HashSet;

use nix::sys::signal::Signal;

use super::layout::Layout;
use super::process::{is_own_child, is_same_process, signal_process};
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
        stop_attempt(layout, key, pid, stopping);
    }
    Ok(())
}

/// Asks one running attempt to stop, once (those in `stopping` were asked
/// already): SIGTERM to its supervisor, which passes it on to the replica's
/// group and kills it after the grace.
pub fn stop_attempt(
    layout: &Layout,
    key: AttemptKey,
    pid: Option<i32>,
    stopping: &mut HashSet<AttemptKey>,
) {
    if stopping.contains(&key) {
        return;
    }
    if let Some(pid) = pid {
        // A pid that is no longer our supervisor's is left alone.
        let ours = match supervisor::read_claim(&layout.attempt_dir(&key)) {
            Some(claim) => claim.pid == pid && is_same_process(pid, claim.started),
            // Not claimed yet: a supervisor this agent has just started,
            // still its child. It blocks the signal first thing and takes
            // it once it has started the replica, or dies of it before it
            // claims anything: either way the attempt ends.
            None => is_own_child(pid),
        };
        if ours {
            let _ = signal_process(pid, Signal::SIGTERM);
        }
        stopping.insert(key);
    }
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::os::unix::process::ExitStatusExt;
    use std::path::Path;
    use std::process::{Child, Command};
    use std::time::{Duration, Instant};

    use super::*;
    use crate::local::process::start_time;
    use crate::spec::{Demand, Framework, Job, Role};

    /// A home with one running job whose one attempt's supervisor is `pid`,
    /// which has not claimed the attempt yet.
    fn launched(home: &Path, pid: i32) -> (Connection, Layout, JobRecord) {
        let layout = Layout::new(home);
        let db = store::open(&layout.database()).expect("database");
        let spec = Job::new(
            "j",
            "t",
            Framework::Custom,
            vec![Role::new("main", 1, &["true"])],
        );
        store::insert_job(&db, &spec, &Demand::of(&spec), home, &BTreeMap::new(), &[])
            .expect("job");
        let job = store::find_job(&db, "t", "j").expect("job");
        let key = AttemptKey {
            job_id: job.id,
            role: "main".into(),
            index: 0,
            attempt: 1,
        };
        store::record_launch(&db, &key, now_ms()).expect("launch");
        store::mark_attempt_running(&db, &key, pid).expect("running");
        (db, layout, job)
    }

    fn ended_within(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    #[test]
    fn a_supervisor_stopped_before_it_claims_its_attempt_gets_the_signal() {
        let home = tempfile::tempdir().expect("home");
        let mut supervisor = Command::new("sleep").arg("30").spawn().expect("sleep");
        let (db, layout, job) = launched(home.path(), supervisor.id() as i32);
        stop_replicas(&db, &layout, &job, &mut HashSet::new()).expect("stop");
        let ended = ended_within(&mut supervisor, Duration::from_secs(5));
        if ended.is_none() {
            let _ = supervisor.kill();
            let _ = supervisor.wait();
        }
        assert_eq!(
            ended.and_then(|status| status.signal()),
            Some(libc::SIGTERM)
        );
    }

    #[test]
    fn an_unclaimed_pid_that_is_not_the_agents_child_is_left_alone() {
        let home = tempfile::tempdir().expect("home");
        // A process whose parent exits at once: adopted by another.
        let out = Command::new("sh")
            .args(["-c", "sleep 30 >/dev/null 2>&1 & echo $!"])
            .output()
            .expect("sh");
        let pid: i32 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("pid");
        let (db, layout, job) = launched(home.path(), pid);
        stop_replicas(&db, &layout, &job, &mut HashSet::new()).expect("stop");
        std::thread::sleep(Duration::from_millis(200));
        let alive = start_time(pid).is_some();
        let _ = signal_process(pid, Signal::SIGKILL);
        assert!(alive, "a process that is not the agent's was signalled");
    }
}

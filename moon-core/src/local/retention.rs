//! Deleting jobs from a `MOON_HOME`: one job's rows and files, for
//! `delete_job` and `delete_tenant`, and the jobs whose
//! `ttlSecondsAfterFinished` has run out, which the agent deletes when the
//! time comes and clients treat as gone should the agent have left first.

use super::layout::Layout;
use super::store::{self, Connection, JobRecord};
use super::volumes;
use crate::error::{Error, Result};

/// Whether an ended job's time to live has run out by `now`.
pub fn is_expired(job: &JobRecord, now_ms: i64) -> bool {
    match (
        job.phase.is_terminal(),
        job.finished_ms,
        job.spec.ttl_seconds_after_finished,
    ) {
        (true, Some(finished), Some(ttl)) => {
            finished.saturating_add((ttl as i64).saturating_mul(1000)) <= now_ms
        }
        _ => false,
    }
}

/// Deletes one ended job: its rows in one transaction, then its directory
/// (logs, attempts). Refuses (`Conflict`) a job that has not ended, checked
/// in the same transaction so that no replica can start in between.
pub fn delete_job(db: &Connection, layout: &Layout, job_id: i64) -> Result<()> {
    let tx = db.transaction()?;
    let job = store::job_by_id(&tx, job_id)?;
    if !job.phase.is_terminal() {
        return Err(Error::Conflict(format!(
            "job {} is {}; it must end before it is deleted",
            job.key(),
            job.phase
        )));
    }
    store::delete_job_rows(&tx, job_id)?;
    tx.commit()?;
    remove_job_dir(layout, job_id)
}

/// Deletes a tenant and all its jobs, which must all have ended: their rows
/// and the tenant's in one transaction, then the jobs' directories.
pub fn delete_tenant(db: &Connection, layout: &Layout, name: &str) -> Result<()> {
    let tx = db.transaction()?;
    if store::tenant(&tx, name)?.is_none() {
        return Err(Error::NotFound {
            kind: "tenant",
            name: name.to_string(),
        });
    }
    let jobs = store::jobs(&tx, Some(name), &[])?;
    // A job submitted after the caller's last look is refused here rather
    // than deleted unseen.
    if let Some(job) = jobs.iter().find(|job| !job.phase.is_terminal()) {
        return Err(Error::Conflict(format!(
            "tenant {name} has job {} {} that has not ended; delete the tenant with force",
            job.spec.name, job.phase
        )));
    }
    for job in &jobs {
        store::delete_job_rows(&tx, job.id)?;
    }
    store::delete_tenant_row(&tx, name)?;
    tx.commit()?;
    for job in &jobs {
        remove_job_dir(layout, job.id)?;
    }
    Ok(())
}

/// Deletes every ended job whose time to live has run out by `now`;
/// returns how many.
pub fn delete_expired(db: &Connection, layout: &Layout, now_ms: i64) -> Result<usize> {
    let expired = store::expired_jobs(db, now_ms)?;
    for id in &expired {
        match delete_job(db, layout, *id) {
            // Deleted meanwhile by a client.
            Ok(()) | Err(Error::NotFound { .. }) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(expired.len())
}

/// When the agent must next wake to delete an expired job, if ever.
pub fn next_expiry_ms(db: &Connection) -> Result<Option<i64>> {
    store::next_expiry_ms(db)
}

fn remove_job_dir(layout: &Layout, job_id: i64) -> Result<()> {
    let dir = layout.job_dir(job_id);
    // Removing files through a volume still mounted would delete the tenant's data.
    let left = volumes::unmount_below(&dir);
    if !left.is_empty() {
        return Err(Error::Agent(format!(
            "job directory {} keeps its files while volumes are mounted in it: {}",
            dir.display(),
            left.join("; ")
        )));
    }
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(Error::io("deleting", dir, error)),
    }
}

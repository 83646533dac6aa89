//! The replicas table: one row per replica of an admitted job, with its
//! phase, its attempts so far, how its latest attempt ended, and when a
//! replica waiting out a restart backoff may start again.

use rusqlite::params;

use super::attempts::AttemptKey;
use super::connection::{Connection, database};
use crate::backend::ReplicaPhase;
use crate::error::Result;

/// A replica row.
#[derive(Debug, Clone)]
pub struct ReplicaRecord {
    /// Role.
    pub role: String,
    /// Index in the role.
    pub index: u32,
    /// Phase.
    pub phase: ReplicaPhase,
    /// Attempts that ran.
    pub attempts: u32,
    /// Latest exit code.
    pub exit_code: Option<i32>,
    /// Latest terminating signal.
    pub signal: Option<i32>,
    /// When a pending replica may start (restart backoff).
    pub next_start_ms: Option<i64>,
}

impl ReplicaRecord {
    /// `worker-1`.
    pub fn name(&self) -> String {
        format!("{}-{}", self.role, self.index)
    }
}

/// A job's replicas, in spec order.
pub fn replicas(db: &Connection, job_id: i64) -> Result<Vec<ReplicaRecord>> {
    let mut statement = db
        .raw()
        .prepare(
            "SELECT role, idx, phase, attempts, exit_code, signal, next_start_ms FROM replicas \
             WHERE job_id = ?1 ORDER BY position, idx",
        )
        .map_err(database)?;
    let rows = statement
        .query_map(params![job_id], |row| {
            let phase: String = row.get(2)?;
            Ok(ReplicaRecord {
                role: row.get(0)?,
                index: row.get(1)?,
                phase: ReplicaPhase::parse(&phase).unwrap_or(ReplicaPhase::Failed),
                attempts: row.get(3)?,
                exit_code: row.get(4)?,
                signal: row.get(5)?,
                next_start_ms: row.get(6)?,
            })
        })
        .map_err(database)?;
    rows.collect::<rusqlite::Result<_>>().map_err(database)
}

/// Adds a Pending replica to an admitted job, `position` being its role's
/// place in the spec; a replica already there is left as it is.
pub fn add_replica(
    db: &Connection,
    job_id: i64,
    role: &str,
    index: u32,
    position: usize,
) -> Result<()> {
    db.raw()
        .execute(
            "INSERT OR IGNORE INTO replicas (job_id, role, idx, position, phase) VALUES (?1, ?2, ?3, ?4, 'Pending')",
            params![job_id, role, index, position as i64],
        )
        .map_err(database)?;
    Ok(())
}

/// Records how the replica of an attempt ended: its new phase, its exit
/// code or signal, and when it may start again (`None`: not on its own).
pub fn record_replica_exit(
    db: &Connection,
    key: &AttemptKey,
    phase: ReplicaPhase,
    exit_code: Option<i32>,
    signal: Option<i32>,
    next_start_ms: Option<i64>,
) -> Result<()> {
    db.raw()
        .execute(
            "UPDATE replicas SET phase = ?4, exit_code = ?5, signal = ?6, next_start_ms = ?7 \
             WHERE job_id = ?1 AND role = ?2 AND idx = ?3",
            params![
                key.job_id,
                key.role,
                key.index,
                phase.as_str(),
                exit_code,
                signal,
                next_start_ms
            ],
        )
        .map_err(database)?;
    Ok(())
}

/// Stops the job's replicas that have not started: they never will.
pub fn stop_pending_replicas(db: &Connection, job_id: i64) -> Result<()> {
    db.raw()
        .execute(
            "UPDATE replicas SET phase = 'Stopped', next_start_ms = NULL WHERE job_id = ?1 AND phase = 'Pending'",
            params![job_id],
        )
        .map_err(database)?;
    Ok(())
}

/// Forgets a replica a service scaled down past; its attempts stay, for
/// their logs.
pub fn delete_replica(db: &Connection, job_id: i64, role: &str, index: u32) -> Result<()> {
    db.raw()
        .execute(
            "DELETE FROM replicas WHERE job_id = ?1 AND role = ?2 AND idx = ?3",
            params![job_id, role, index],
        )
        .map_err(database)?;
    Ok(())
}

/// Stops every replica of an ended job that has not ended itself.
pub fn stop_unfinished_replicas(db: &Connection, job_id: i64) -> Result<()> {
    db.raw()
        .execute(
            "UPDATE replicas SET phase = 'Stopped', next_start_ms = NULL WHERE job_id = ?1 AND phase IN ('Pending', 'Running')",
            params![job_id],
        )
        .map_err(database)?;
    Ok(())
}

/// When the first replica waiting out a restart backoff may start.
pub fn next_restart_ms(db: &Connection) -> Result<Option<i64>> {
    db.raw()
        .query_row(
            "SELECT MIN(next_start_ms) FROM replicas WHERE next_start_ms IS NOT NULL",
            [],
            |row| row.get(0),
        )
        .map_err(database)
}

/// The jobs with a replica whose restart backoff is over by `now`.
pub fn jobs_with_restart_due(db: &Connection, now: i64) -> Result<Vec<i64>> {
    let mut statement = db
        .raw()
        .prepare_cached(
            "SELECT DISTINCT job_id FROM replicas WHERE next_start_ms IS NOT NULL AND next_start_ms <= ?1",
        )
        .map_err(database)?;
    statement
        .query_map(params![now], |row| row.get(0))
        .map_err(database)?
        .collect::<rusqlite::Result<_>>()
        .map_err(database)
}

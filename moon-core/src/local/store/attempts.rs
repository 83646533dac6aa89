//! The attempts table: each run of a replica, from the moment the agent
//! decides to launch it (`launching`) through its supervisor's start
//! (`running`) to its end (`exited`), or `abandoned` when the agent died
//! before any supervisor claimed it. An attempt is recorded before its
//! supervisor starts, which is what lets a new agent tell, after a crash,
//! what was in flight.

use rusqlite::{OptionalExtension, params};

use super::connection::{Connection, database};
use crate::error::Result;

/// Identifies one attempt of one replica.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AttemptKey {
    /// The job's row id.
    pub job_id: i64,
    /// The replica's role.
    pub role: String,
    /// The replica's index in its role.
    pub index: u32,
    /// Which attempt of the replica, from 1.
    pub attempt: u32,
}

impl AttemptKey {
    /// The replica's name, `worker-1`.
    pub fn replica(&self) -> String {
        format!("{}-{}", self.role, self.index)
    }
}

/// Every attempt launching or running, in any job.
pub fn attempts_in_flight(db: &Connection) -> Result<Vec<AttemptKey>> {
    let mut statement = db
        .raw()
        .prepare(
            "SELECT job_id, role, idx, attempt FROM attempts WHERE state IN ('launching', 'running')",
        )
        .map_err(database)?;
    statement
        .query_map([], |row| {
            Ok(AttemptKey {
                job_id: row.get(0)?,
                role: row.get(1)?,
                index: row.get(2)?,
                attempt: row.get(3)?,
            })
        })
        .map_err(database)?
        .collect::<rusqlite::Result<_>>()
        .map_err(database)
}

/// The attempts of one job launching or running, with their supervisor's
/// pid once it started.
pub fn running_attempts_of_job(
    db: &Connection,
    job_id: i64,
) -> Result<Vec<(AttemptKey, Option<i32>)>> {
    let mut statement = db
        .raw()
        .prepare(
            "SELECT role, idx, attempt, supervisor_pid FROM attempts WHERE job_id = ?1 AND state IN ('launching', 'running')",
        )
        .map_err(database)?;
    statement
        .query_map(params![job_id], |row| {
            Ok((
                AttemptKey {
                    job_id,
                    role: row.get(0)?,
                    index: row.get(1)?,
                    attempt: row.get(2)?,
                },
                row.get(3)?,
            ))
        })
        .map_err(database)?
        .collect::<rusqlite::Result<_>>()
        .map_err(database)
}

/// How many attempts of one job are launching or running.
pub fn count_attempts_in_flight(db: &Connection, job_id: i64) -> Result<i64> {
    db.raw()
        .query_row(
            "SELECT COUNT(*) FROM attempts WHERE job_id = ?1 AND state IN ('launching', 'running')",
            params![job_id],
            |row| row.get(0),
        )
        .map_err(database)
}

/// Whether the attempt is launching or running; an attempt that is not
/// recorded is not.
pub fn is_in_flight(db: &Connection, key: &AttemptKey) -> Result<bool> {
    let state: Option<String> = db
        .raw()
        .query_row(
            "SELECT state FROM attempts WHERE job_id = ?1 AND role = ?2 AND idx = ?3 AND attempt = ?4",
            params![key.job_id, key.role, key.index, key.attempt],
            |row| row.get(0),
        )
        .optional()
        .map_err(database)?;
    Ok(matches!(state.as_deref(), Some("launching" | "running")))
}

/// The number the replica's next attempt gets: one more than its last.
pub fn next_attempt(db: &Connection, job_id: i64, role: &str, index: u32) -> Result<u32> {
    db.raw()
        .query_row(
            "SELECT COALESCE(MAX(attempt), 0) + 1 FROM attempts WHERE job_id = ?1 AND role = ?2 AND idx = ?3",
            params![job_id, role, index],
            |row| row.get(0),
        )
        .map_err(database)
}

/// Records an attempt about to launch, and its replica as Running with one
/// attempt more and no exit of before.
pub fn record_launch(db: &Connection, key: &AttemptKey, started_ms: i64) -> Result<()> {
    db.raw()
        .execute(
            "INSERT INTO attempts (job_id, role, idx, attempt, state, started_ms) VALUES (?1, ?2, ?3, ?4, 'launching', ?5)",
            params![key.job_id, key.role, key.index, key.attempt, started_ms],
        )
        .map_err(database)?;
    db.raw()
        .execute(
            "UPDATE replicas SET phase = 'Running', attempts = attempts + 1, next_start_ms = NULL, exit_code = NULL, signal = NULL \
             WHERE job_id = ?1 AND role = ?2 AND idx = ?3",
            params![key.job_id, key.role, key.index],
        )
        .map_err(database)?;
    Ok(())
}

/// Records that the attempt's supervisor, `pid`, runs it.
pub fn mark_attempt_running(db: &Connection, key: &AttemptKey, pid: i32) -> Result<()> {
    db.raw()
        .execute(
            "UPDATE attempts SET state = 'running', supervisor_pid = ?5 \
             WHERE job_id = ?1 AND role = ?2 AND idx = ?3 AND attempt = ?4",
            params![key.job_id, key.role, key.index, key.attempt, pid],
        )
        .map_err(database)?;
    Ok(())
}

/// Records that the attempt ended.
pub fn mark_attempt_exited(db: &Connection, key: &AttemptKey) -> Result<()> {
    db.raw()
        .execute(
            "UPDATE attempts SET state = 'exited' WHERE job_id = ?1 AND role = ?2 AND idx = ?3 AND attempt = ?4",
            params![key.job_id, key.role, key.index, key.attempt],
        )
        .map_err(database)?;
    Ok(())
}

/// Forgets an attempt no supervisor ran: the attempt is abandoned and its
/// replica is Pending again, as if it had never been launched.
pub fn abandon_attempt(db: &Connection, key: &AttemptKey) -> Result<()> {
    db.raw()
        .execute(
            "UPDATE attempts SET state = 'abandoned' WHERE job_id = ?1 AND role = ?2 AND idx = ?3 AND attempt = ?4",
            params![key.job_id, key.role, key.index, key.attempt],
        )
        .map_err(database)?;
    db.raw()
        .execute(
            "UPDATE replicas SET phase = 'Pending', attempts = attempts - 1, next_start_ms = NULL \
             WHERE job_id = ?1 AND role = ?2 AND idx = ?3",
            params![key.job_id, key.role, key.index],
        )
        .map_err(database)?;
    Ok(())
}

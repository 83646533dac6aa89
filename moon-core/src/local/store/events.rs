//! The events table: what happened to each job, in one sequence over the
//! whole home, so that a watcher resumes after the last event it saw.

use rusqlite::{OptionalExtension, Row, params};

use super::clock::now_ms;
use super::connection::{Connection, database};
use super::jobs::JobRecord;
use crate::backend::{Event, Phase};
use crate::error::{Error, Result};

/// Appends an event; returns its sequence number.
pub fn add_event(
    db: &Connection,
    job: &JobRecord,
    kind: &str,
    phase: Phase,
    replica: Option<&str>,
    message: &str,
) -> Result<u64> {
    db.raw()
        .execute(
            "INSERT INTO events (job_id, time_ms, kind, phase, replica, message) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![job.id, now_ms(), kind, phase.as_str(), replica, message],
        )
        .map_err(database)?;
    Ok(db.raw().last_insert_rowid() as u64)
}

/// The sequence number of the last event committed, 0 when there is none.
pub fn last_event_seq(db: &Connection) -> Result<u64> {
    let last: Option<i64> = db
        .raw()
        .query_row("SELECT MAX(seq) FROM events", [], |row| row.get(0))
        .map_err(database)?;
    Ok(last.unwrap_or(0) as u64)
}

/// Every event committed after `after`, with the id of its job, in order:
/// what the agent hands to watchers after each pass.
pub fn events_since(db: &Connection, after: u64) -> Result<Vec<(i64, Event)>> {
    let mut statement = db
        .raw()
        .prepare_cached(
            "SELECT e.seq, e.time_ms, e.kind, e.phase, e.replica, e.message, e.job_id, j.tenant, j.name \
             FROM events e JOIN jobs j ON j.id = e.job_id WHERE e.seq > ?1 ORDER BY e.seq",
        )
        .map_err(database)?;
    let rows = statement
        .query_map(params![after as i64], |row| {
            Ok((row.get(6)?, event_from_row(row, row.get(7)?, row.get(8)?)?))
        })
        .map_err(database)?;
    rows.collect::<rusqlite::Result<_>>().map_err(database)
}

/// The phase of the job with row id `job_id` and its events after `after`;
/// `NotFound` when there is no such job (it was never there, or was deleted).
pub fn job_events(db: &Connection, job_id: i64, after: u64) -> Result<(Phase, Vec<Event>)> {
    let (tenant, name, phase): (String, String, String) = db
        .raw()
        .query_row(
            "SELECT tenant, name, phase FROM jobs WHERE id = ?1",
            params![job_id],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .optional()
        .map_err(database)?
        .ok_or_else(|| Error::NotFound {
            kind: "job",
            name: format!("#{job_id}"),
        })?;
    let events = events_of_job(db, job_id, &tenant, &name, after)?;
    Ok((Phase::parse(&phase).unwrap_or(Phase::Failed), events))
}

/// A job's events after `after`.
pub fn events(db: &Connection, job: &JobRecord, after: Option<u64>) -> Result<Vec<Event>> {
    events_of_job(
        db,
        job.id,
        &job.spec.tenant,
        &job.spec.name,
        after.unwrap_or(0),
    )
}

/// The events of job `job_id` (`tenant/name`) after `after`, in order.
fn events_of_job(
    db: &Connection,
    job_id: i64,
    tenant: &str,
    name: &str,
    after: u64,
) -> Result<Vec<Event>> {
    let mut statement = db
        .raw()
        .prepare_cached(
            "SELECT seq, time_ms, kind, phase, replica, message FROM events \
             WHERE job_id = ?1 AND seq > ?2 ORDER BY seq",
        )
        .map_err(database)?;
    let rows = statement
        .query_map(params![job_id, after as i64], |row| {
            event_from_row(row, tenant.to_string(), name.to_string())
        })
        .map_err(database)?;
    rows.collect::<rusqlite::Result<_>>().map_err(database)
}

/// An event from a row whose first columns are `seq, time_ms, kind, phase,
/// replica, message`.
fn event_from_row(row: &Row<'_>, tenant: String, job: String) -> rusqlite::Result<Event> {
    let phase: String = row.get(3)?;
    Ok(Event {
        seq: row.get::<_, i64>(0)? as u64,
        time_ms: row.get(1)?,
        tenant,
        job,
        kind: row.get(2)?,
        phase: Phase::parse(&phase).unwrap_or(Phase::Failed),
        replica: row.get(4)?,
        message: row.get(5)?,
    })
}

//! The jobs table: a job's record, finding jobs, and each step of a job's
//! life as the client and the agent record it (submitted, cancel asked,
//! waiting, admitted, restarted, ending, finished, deleted).

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::{OptionalExtension, Row, params};

use super::clock::now_ms;
use super::connection::{Connection, database};
use crate::backend::Phase;
use crate::error::{Error, Result};
use crate::spec::{Demand, Job, Service};
use crate::volumes::ResolvedVolume;

/// A job row, as the agent and clients use it.
#[derive(Debug, Clone)]
pub struct JobRecord {
    /// Row id; also names the job's directory.
    pub id: i64,
    /// The spec as submitted.
    pub spec: Job,
    /// Current phase.
    pub phase: Phase,
    /// Short reason.
    pub reason: Option<String>,
    /// Sentence for people.
    pub message: Option<String>,
    /// Submission time.
    pub created_ms: i64,
    /// Admission time.
    pub started_ms: Option<i64>,
    /// End time.
    pub finished_ms: Option<i64>,
    /// A user asked to cancel.
    pub cancel_requested: bool,
    /// The phase the job will end in once its replicas have stopped.
    pub ending: Option<(Phase, String, String)>,
    /// Restarts so far.
    pub restarts: u32,
    /// Ports allocated at admission, by port name.
    pub ports: BTreeMap<String, u16>,
    /// GPUs assigned at admission, by replica (`worker-0`), as device UUIDs.
    pub gpu_devices: BTreeMap<String, Vec<String>>,
    /// The submitter's working directory.
    pub submit_dir: String,
    /// What replicas inherit of the submitter's environment: the variables
    /// every replica gets and those a role names in `inheritEnv`, nothing else.
    pub submit_env: BTreeMap<String, String>,
    /// The job's volumes, resolved when it was submitted.
    pub volumes: Vec<ResolvedVolume>,
    /// The service whose replicas this job runs, if it is a service's.
    pub service: Option<Service>,
}

impl JobRecord {
    /// `tenant/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.spec.tenant, self.spec.name)
    }
}

const JOB_COLUMNS: &str = "id, spec, phase, reason, message, created_ms, started_ms, finished_ms, \
     cancel_requested, ending_phase, ending_reason, ending_message, restarts, ports, submit_dir, submit_env, gpu_devices, volumes, \
     (SELECT services.spec FROM services WHERE services.job_id = jobs.id)";

/// A JSON column that does not decode, as rusqlite reports a bad column.
pub(super) fn undecodable(error: serde_json::Error) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(error))
}

fn job_from_row(row: &Row<'_>) -> rusqlite::Result<JobRecord> {
    let spec: String = row.get(1)?;
    let phase: String = row.get(2)?;
    let ending_phase: Option<String> = row.get(9)?;
    let ports: String = row.get(13)?;
    let env: String = row.get(15)?;
    let gpu_devices: String = row.get(16)?;
    let volumes: String = row.get(17)?;
    let service: Option<String> = row.get(18)?;
    Ok(JobRecord {
        id: row.get(0)?,
        spec: serde_json::from_str(&spec).map_err(undecodable)?,
        phase: Phase::parse(&phase).unwrap_or(Phase::Failed),
        reason: row.get(3)?,
        message: row.get(4)?,
        created_ms: row.get(5)?,
        started_ms: row.get(6)?,
        finished_ms: row.get(7)?,
        cancel_requested: row.get::<_, i64>(8)? != 0,
        ending: match ending_phase.as_deref().and_then(Phase::parse) {
            Some(phase) => Some((
                phase,
                row.get::<_, Option<String>>(10)?.unwrap_or_default(),
                row.get::<_, Option<String>>(11)?.unwrap_or_default(),
            )),
            None => None,
        },
        restarts: row.get(12)?,
        ports: serde_json::from_str(&ports).map_err(undecodable)?,
        submit_dir: row.get(14)?,
        submit_env: serde_json::from_str(&env).map_err(undecodable)?,
        gpu_devices: serde_json::from_str(&gpu_devices).map_err(undecodable)?,
        volumes: serde_json::from_str(&volumes).map_err(undecodable)?,
        service: match service {
            Some(spec) => Some(serde_json::from_str(&spec).map_err(undecodable)?),
            None => None,
        },
    })
}

/// One job by tenant and name.
pub fn find_job(db: &Connection, tenant: &str, name: &str) -> Result<JobRecord> {
    db.raw()
        .query_row(
            &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE tenant = ?1 AND name = ?2"),
            params![tenant, name],
            job_from_row,
        )
        .optional()
        .map_err(database)?
        .ok_or_else(|| Error::NotFound {
            kind: "job",
            name: format!("{tenant}/{name}"),
        })
}

/// One job by id.
pub fn job_by_id(db: &Connection, id: i64) -> Result<JobRecord> {
    db.raw()
        .query_row(
            &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"),
            params![id],
            job_from_row,
        )
        .optional()
        .map_err(database)?
        .ok_or_else(|| Error::NotFound {
            kind: "job",
            name: format!("#{id}"),
        })
}

/// Jobs in the given phases (all of them when none is given), oldest first,
/// optionally of one tenant. The phases are picked in SQL, through the phase
/// index, so asking for unfinished jobs does not read the finished ones.
pub fn jobs(db: &Connection, tenant: Option<&str>, phases: &[Phase]) -> Result<Vec<JobRecord>> {
    let mut statement = db
        .raw()
        .prepare_cached(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE (?1 IS NULL OR tenant = ?1) AND {} ORDER BY id",
            phase_filter(phases)
        ))
        .map_err(database)?;
    let rows = statement
        .query_map(params![tenant], job_from_row)
        .map_err(database)?;
    rows.collect::<rusqlite::Result<_>>().map_err(database)
}

/// `phase IN ('Pending', ...)`, or `1` for every phase. The names are moon's
/// own constants, never user input.
fn phase_filter(phases: &[Phase]) -> String {
    if phases.is_empty() {
        return "1".to_string();
    }
    let names: Vec<String> = phases
        .iter()
        .map(|phase| format!("'{}'", phase.as_str()))
        .collect();
    format!("phase IN ({})", names.join(", "))
}

/// The running jobs that run services' replicas, through the services
/// table: a pass does not read the other running jobs to find them.
pub fn running_services(db: &Connection) -> Result<Vec<JobRecord>> {
    let mut statement = db
        .raw()
        .prepare_cached(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE id IN (SELECT job_id FROM services) \
             AND phase = 'Running' ORDER BY id"
        ))
        .map_err(database)?;
    let rows = statement.query_map([], job_from_row).map_err(database)?;
    rows.collect::<rusqlite::Result<_>>().map_err(database)
}

/// Replaces a running job's ports (a service given a port per new replica).
pub fn set_job_ports(db: &Connection, job_id: i64, ports: &BTreeMap<String, u16>) -> Result<()> {
    let ports = serde_json::to_string(ports).map_err(|error| Error::Agent(error.to_string()))?;
    db.raw()
        .execute(
            "UPDATE jobs SET ports = ?2 WHERE id = ?1",
            params![job_id, ports],
        )
        .map_err(database)?;
    Ok(())
}

/// Whether any job is Pending or Running: an agent with none may leave.
pub fn has_unfinished_jobs(db: &Connection) -> Result<bool> {
    let count: i64 = db
        .raw()
        .query_row(
            "SELECT COUNT(*) FROM jobs WHERE phase IN ('Pending', 'Running')",
            [],
            |row| row.get(0),
        )
        .map_err(database)?;
    Ok(count > 0)
}

/// Records a submitted job, Pending and queued; `AlreadyExists` when its
/// tenant has a job of that name.
pub fn insert_job(
    db: &Connection,
    job: &Job,
    demand: &Demand,
    submit_dir: &Path,
    submit_env: &BTreeMap<String, String>,
    volumes: &[ResolvedVolume],
) -> Result<()> {
    let spec = serde_json::to_string(job).map_err(|error| Error::Agent(error.to_string()))?;
    let volumes =
        serde_json::to_string(volumes).map_err(|error| Error::Agent(error.to_string()))?;
    let inserted = db.raw().execute(
        "INSERT INTO jobs (tenant, name, spec, framework, phase, reason, message, created_ms, \
         millicores, bytes, gpus, submit_dir, submit_env, volumes) \
         VALUES (?1, ?2, ?3, ?4, 'Pending', 'Queued', 'waiting for admission', ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            job.tenant,
            job.name,
            spec,
            job.framework.as_str(),
            now_ms(),
            demand.millicores as i64,
            demand.bytes as i64,
            demand.gpus as i64,
            submit_dir.to_string_lossy(),
            serde_json::to_string(submit_env).unwrap_or_default(),
            volumes,
        ],
    );
    match inserted {
        Err(rusqlite::Error::SqliteFailure(error, _))
            if error.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            Err(Error::AlreadyExists {
                kind: "job",
                name: format!("{}/{}", job.tenant, job.name),
            })
        }
        other => other.map(|_| ()).map_err(database),
    }
}

/// Records that a user asked to cancel the job; the agent acts on it.
pub fn request_cancel(db: &Connection, job_id: i64) -> Result<()> {
    db.raw()
        .execute(
            "UPDATE jobs SET cancel_requested = 1 WHERE id = ?1",
            params![job_id],
        )
        .map_err(database)?;
    Ok(())
}

/// Unfinished jobs a user asked to cancel that are not ending yet, with
/// their phase.
pub fn cancels_asked(db: &Connection) -> Result<Vec<(i64, Phase)>> {
    let mut statement = db
        .raw()
        .prepare_cached(
            "SELECT id, phase FROM jobs WHERE phase IN ('Pending', 'Running') \
             AND cancel_requested = 1 AND ending_phase IS NULL",
        )
        .map_err(database)?;
    let asked: Vec<(i64, String)> = statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .map_err(database)?
        .collect::<rusqlite::Result<_>>()
        .map_err(database)?;
    Ok(asked
        .into_iter()
        .map(|(id, phase)| (id, Phase::parse(&phase).unwrap_or(Phase::Failed)))
        .collect())
}

/// Records why a pending job still waits.
pub fn set_waiting(db: &Connection, job_id: i64, reason: &str, message: &str) -> Result<()> {
    db.raw()
        .execute(
            "UPDATE jobs SET reason = ?2, message = ?3 WHERE id = ?1",
            params![job_id, reason, message],
        )
        .map_err(database)?;
    Ok(())
}

/// Records a job's admission: Running since `started_ms`, with the ports
/// and GPUs it was given.
pub fn mark_job_running(
    db: &Connection,
    job_id: i64,
    started_ms: i64,
    ports: &BTreeMap<String, u16>,
    gpus: &BTreeMap<String, Vec<String>>,
) -> Result<()> {
    db.raw()
        .execute(
            "UPDATE jobs SET phase = 'Running', started_ms = ?2, reason = NULL, message = NULL, ports = ?3, gpu_devices = ?4 WHERE id = ?1",
            params![
                job_id,
                started_ms,
                serde_json::to_string(ports).unwrap_or_default(),
                serde_json::to_string(gpus).unwrap_or_default()
            ],
        )
        .map_err(database)?;
    Ok(())
}

/// Counts one more restart of the job.
pub fn count_restart(db: &Connection, job_id: i64) -> Result<()> {
    db.raw()
        .execute(
            "UPDATE jobs SET restarts = restarts + 1 WHERE id = ?1",
            params![job_id],
        )
        .map_err(database)?;
    Ok(())
}

/// Marks a job as ending: its replicas are stopped, then it takes `phase`.
/// A job already ending keeps the end it was given first.
pub fn begin_ending(
    db: &Connection,
    job_id: i64,
    phase: Phase,
    reason: &str,
    message: &str,
) -> Result<()> {
    db.raw()
        .execute(
            "UPDATE jobs SET ending_phase = ?2, ending_reason = ?3, ending_message = ?4 WHERE id = ?1 AND ending_phase IS NULL",
            params![job_id, phase.as_str(), reason, message],
        )
        .map_err(database)?;
    Ok(())
}

/// Records a job's end: its final phase, why, when, and when it expires
/// (`None`: never).
pub fn mark_job_finished(
    db: &Connection,
    job_id: i64,
    phase: Phase,
    reason: &str,
    message: &str,
    finished_ms: i64,
    expires_ms: Option<i64>,
) -> Result<()> {
    db.raw()
        .execute(
            "UPDATE jobs SET phase = ?2, reason = ?3, message = ?4, finished_ms = ?5, expires_ms = ?6, \
             ending_phase = NULL, ending_reason = NULL, ending_message = NULL WHERE id = ?1",
            params![job_id, phase.as_str(), reason, message, finished_ms, expires_ms],
        )
        .map_err(database)?;
    Ok(())
}

/// Removes every row of one job: its events, attempts, replicas and the job
/// itself. Its id is never given again (the table is AUTOINCREMENT), so
/// nothing that still names it can reach a later job.
pub fn delete_job_rows(db: &Connection, job_id: i64) -> Result<()> {
    for table in ["events", "attempts", "replicas", "services"] {
        db.raw()
            .execute(
                &format!("DELETE FROM {table} WHERE job_id = ?1"),
                params![job_id],
            )
            .map_err(database)?;
    }
    db.raw()
        .execute("DELETE FROM jobs WHERE id = ?1", params![job_id])
        .map_err(database)?;
    Ok(())
}

/// Ended jobs whose `ttlSecondsAfterFinished` has run out by `now`, by id
/// (the agent sets `expires_ms` when such a job ends).
pub fn expired_jobs(db: &Connection, now: i64) -> Result<Vec<i64>> {
    let mut statement = db
        .raw()
        .prepare_cached(
            "SELECT id FROM jobs WHERE expires_ms IS NOT NULL AND expires_ms <= ?1 ORDER BY id",
        )
        .map_err(database)?;
    let rows = statement
        .query_map(params![now], |row| row.get(0))
        .map_err(database)?;
    rows.collect::<rusqlite::Result<_>>().map_err(database)
}

/// When the next ended job's `ttlSecondsAfterFinished` runs out, if any has one.
pub fn next_expiry_ms(db: &Connection) -> Result<Option<i64>> {
    db.raw()
        .query_row(
            "SELECT MIN(expires_ms) FROM jobs WHERE expires_ms IS NOT NULL",
            [],
            |row| row.get(0),
        )
        .map_err(database)
}

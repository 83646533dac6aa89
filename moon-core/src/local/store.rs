//! The local backend's state in SQLite (WAL mode), shared by every client
//! and the agent of one `MOON_HOME`. A row committed here is acknowledged:
//! it survives the death of any moon process.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::private;
use crate::backend::{Event, JobStatus, Phase, ReplicaPhase, ReplicaStatus};
use crate::error::{Error, Result};
use crate::spec::{Job, Tenant};

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS tenants (
    name TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant TEXT NOT NULL,
    name TEXT NOT NULL,
    spec TEXT NOT NULL,
    framework TEXT NOT NULL,
    phase TEXT NOT NULL,
    reason TEXT,
    message TEXT,
    created_ms INTEGER NOT NULL,
    started_ms INTEGER,
    finished_ms INTEGER,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    ending_phase TEXT,
    ending_reason TEXT,
    ending_message TEXT,
    restarts INTEGER NOT NULL DEFAULT 0,
    millicores INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    gpus INTEGER NOT NULL,
    ports TEXT NOT NULL DEFAULT '{}',
    gpu_devices TEXT NOT NULL DEFAULT '{}',
    submit_dir TEXT NOT NULL,
    submit_env TEXT NOT NULL,
    expires_ms INTEGER,
    UNIQUE (tenant, name)
);
CREATE TABLE IF NOT EXISTS replicas (
    job_id INTEGER NOT NULL,
    role TEXT NOT NULL,
    idx INTEGER NOT NULL,
    position INTEGER NOT NULL,
    phase TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    exit_code INTEGER,
    signal INTEGER,
    next_start_ms INTEGER,
    PRIMARY KEY (job_id, role, idx)
);
CREATE TABLE IF NOT EXISTS attempts (
    job_id INTEGER NOT NULL,
    role TEXT NOT NULL,
    idx INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    state TEXT NOT NULL,
    supervisor_pid INTEGER,
    started_ms INTEGER NOT NULL,
    PRIMARY KEY (job_id, role, idx, attempt)
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id INTEGER NOT NULL,
    time_ms INTEGER NOT NULL,
    kind TEXT NOT NULL,
    phase TEXT NOT NULL,
    replica TEXT,
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_job ON events (job_id, seq);
-- The agent looks only at unfinished jobs, replicas waiting out a backoff and
-- attempts in flight; these keep each look from reading the whole history.
CREATE INDEX IF NOT EXISTS jobs_by_phase ON jobs (phase);
CREATE INDEX IF NOT EXISTS replicas_waiting ON replicas (next_start_ms) WHERE next_start_ms IS NOT NULL;
CREATE INDEX IF NOT EXISTS attempts_in_flight ON attempts (job_id) WHERE state IN ('launching', 'running');
CREATE TABLE IF NOT EXISTS settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"#;

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or(0)
}

/// Opens (creating if needed) the database of a `MOON_HOME`.
pub fn open(path: &Path) -> Result<Connection> {
    // Made 0600 before SQLite opens it: SQLite gives its -wal and -shm files
    // the database file's own mode.
    private::open_options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|error| Error::io("creating", path, error))?;
    let connection = Connection::open(path)?;
    connection.busy_timeout(Duration::from_secs(30))?;
    // WAL lets readers (watchers, `moon job ls`) run beside the agent's writes;
    // synchronous=FULL makes a committed row survive power loss, not just a crash.
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", "FULL")?;
    connection.execute_batch(SCHEMA)?;
    add_missing_columns(&connection)?;
    connection.execute_batch(INDEXES_ON_ADDED_COLUMNS)?;
    Ok(connection)
}

/// Columns added after a MOON_HOME's database may have been made, with
/// their definitions: `CREATE TABLE IF NOT EXISTS` leaves an old table as it was.
const ADDED_COLUMNS: &[(&str, &str, &str)] = &[
    ("jobs", "gpu_devices", "TEXT NOT NULL DEFAULT '{}'"),
    ("jobs", "expires_ms", "INTEGER"),
];

/// Indexes over columns of `ADDED_COLUMNS`, made once the columns exist.
/// `jobs_expiring`: finding the expired jobs does not read every finished one.
const INDEXES_ON_ADDED_COLUMNS: &str =
    "CREATE INDEX IF NOT EXISTS jobs_expiring ON jobs (expires_ms) WHERE expires_ms IS NOT NULL;";

fn add_missing_columns(connection: &Connection) -> rusqlite::Result<()> {
    for (table, column, definition) in ADDED_COLUMNS {
        let present: bool = connection.query_row(
            &format!("SELECT COUNT(*) > 0 FROM pragma_table_info('{table}') WHERE name = ?1"),
            [column],
            |row| row.get(0),
        )?;
        if !present {
            connection.execute_batch(&format!(
                "ALTER TABLE {table} ADD COLUMN {column} {definition}"
            ))?;
        }
    }
    Ok(())
}

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
}

impl JobRecord {
    /// `tenant/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.spec.tenant, self.spec.name)
    }
}

const JOB_COLUMNS: &str = "id, spec, phase, reason, message, created_ms, started_ms, finished_ms, \
     cancel_requested, ending_phase, ending_reason, ending_message, restarts, ports, submit_dir, submit_env, gpu_devices";

fn job_from_row(row: &Row<'_>) -> rusqlite::Result<JobRecord> {
    let spec: String = row.get(1)?;
    let phase: String = row.get(2)?;
    let ending_phase: Option<String> = row.get(9)?;
    let ports: String = row.get(13)?;
    let env: String = row.get(15)?;
    let gpu_devices: String = row.get(16)?;
    let decode = |error: serde_json::Error| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(error))
    };
    Ok(JobRecord {
        id: row.get(0)?,
        spec: serde_json::from_str(&spec).map_err(decode)?,
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
        ports: serde_json::from_str(&ports).map_err(decode)?,
        submit_dir: row.get(14)?,
        submit_env: serde_json::from_str(&env).map_err(decode)?,
        gpu_devices: serde_json::from_str(&gpu_devices).map_err(decode)?,
    })
}

/// One job by tenant and name.
pub fn find_job(db: &Connection, tenant: &str, name: &str) -> Result<JobRecord> {
    db.query_row(
        &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE tenant = ?1 AND name = ?2"),
        params![tenant, name],
        job_from_row,
    )
    .optional()?
    .ok_or_else(|| Error::NotFound {
        kind: "job",
        name: format!("{tenant}/{name}"),
    })
}

/// One job by id.
pub fn job_by_id(db: &Connection, id: i64) -> Result<JobRecord> {
    db.query_row(
        &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"),
        params![id],
        job_from_row,
    )
    .optional()?
    .ok_or_else(|| Error::NotFound {
        kind: "job",
        name: format!("#{id}"),
    })
}

/// Jobs in the given phases (all of them when none is given), oldest first,
/// optionally of one tenant. The phases are picked in SQL, through the phase
/// index, so asking for unfinished jobs does not read the finished ones.
pub fn jobs(db: &Connection, tenant: Option<&str>, phases: &[Phase]) -> Result<Vec<JobRecord>> {
    let mut statement = db.prepare_cached(&format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE (?1 IS NULL OR tenant = ?1) AND {} ORDER BY id",
        phase_filter(phases)
    ))?;
    let rows = statement.query_map(params![tenant], job_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
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
    let mut statement = db.prepare(
        "SELECT role, idx, phase, attempts, exit_code, signal, next_start_ms FROM replicas \
         WHERE job_id = ?1 ORDER BY position, idx",
    )?;
    let rows = statement.query_map(params![job_id], |row| {
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
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The status users see.
pub fn status(db: &Connection, job: &JobRecord) -> Result<JobStatus> {
    let replicas = replicas(db, job.id)?
        .into_iter()
        .map(|replica| ReplicaStatus {
            role: replica.role,
            index: replica.index,
            phase: replica.phase,
            attempts: replica.attempts,
            exit_code: replica.exit_code,
            signal: replica.signal,
        })
        .collect();
    Ok(JobStatus {
        tenant: job.spec.tenant.clone(),
        name: job.spec.name.clone(),
        framework: job.spec.framework,
        phase: job.phase,
        reason: job.reason.clone(),
        message: job.message.clone(),
        created_ms: job.created_ms,
        started_ms: job.started_ms,
        finished_ms: job.finished_ms,
        restarts: job.restarts,
        replicas,
    })
}

/// Appends an event; returns its sequence number.
pub fn add_event(
    db: &Connection,
    job: &JobRecord,
    kind: &str,
    phase: Phase,
    replica: Option<&str>,
    message: &str,
) -> Result<u64> {
    db.execute(
        "INSERT INTO events (job_id, time_ms, kind, phase, replica, message) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![job.id, now_ms(), kind, phase.as_str(), replica, message],
    )?;
    Ok(db.last_insert_rowid() as u64)
}

/// Every event committed after `after`, with the id of its job, in order:
/// what the agent hands to watchers after each pass.
pub fn events_since(db: &Connection, after: u64) -> Result<Vec<(i64, Event)>> {
    let mut statement = db.prepare_cached(
        "SELECT e.seq, e.time_ms, e.kind, e.phase, e.replica, e.message, e.job_id, j.tenant, j.name \
         FROM events e JOIN jobs j ON j.id = e.job_id WHERE e.seq > ?1 ORDER BY e.seq",
    )?;
    let rows = statement.query_map(params![after as i64], |row| {
        Ok((row.get(6)?, event_from_row(row, row.get(7)?, row.get(8)?)?))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The phase of the job with row id `job_id` and its events after `after`;
/// `NotFound` when there is no such job (it was never there, or was deleted).
pub fn job_events(db: &Connection, job_id: i64, after: u64) -> Result<(Phase, Vec<Event>)> {
    let (tenant, name, phase): (String, String, String) = db
        .query_row(
            "SELECT tenant, name, phase FROM jobs WHERE id = ?1",
            params![job_id],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .optional()?
        .ok_or_else(|| Error::NotFound {
            kind: "job",
            name: format!("#{job_id}"),
        })?;
    let mut statement = db.prepare_cached(
        "SELECT seq, time_ms, kind, phase, replica, message FROM events \
         WHERE job_id = ?1 AND seq > ?2 ORDER BY seq",
    )?;
    let rows = statement.query_map(params![job_id, after as i64], |row| {
        event_from_row(row, tenant.clone(), name.clone())
    })?;
    let events = rows.collect::<rusqlite::Result<_>>()?;
    Ok((Phase::parse(&phase).unwrap_or(Phase::Failed), events))
}

/// A job's events after `after`.
pub fn events(db: &Connection, job: &JobRecord, after: Option<u64>) -> Result<Vec<Event>> {
    let mut statement = db.prepare(
        "SELECT seq, time_ms, kind, phase, replica, message FROM events \
         WHERE job_id = ?1 AND seq > ?2 ORDER BY seq",
    )?;
    let rows = statement.query_map(params![job.id, after.unwrap_or(0) as i64], |row| {
        event_from_row(row, job.spec.tenant.clone(), job.spec.name.clone())
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
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

/// One tenant's spec.
pub fn tenant(db: &Connection, name: &str) -> Result<Option<Tenant>> {
    let spec: Option<String> = db
        .query_row(
            "SELECT spec FROM tenants WHERE name = ?1",
            params![name],
            |row| row.get(0),
        )
        .optional()?;
    spec.map(|text| {
        serde_json::from_str(&text)
            .map_err(|error| Error::Agent(format!("stored tenant {name:?} is unreadable: {error}")))
    })
    .transpose()
}

/// Every tenant, by name.
pub fn tenants(db: &Connection) -> Result<Vec<Tenant>> {
    let mut statement = db.prepare("SELECT spec FROM tenants ORDER BY name")?;
    let rows = statement.query_map([], |row| row.get::<_, String>(0))?;
    let mut found = Vec::new();
    for text in rows {
        found.push(
            serde_json::from_str(&text?)
                .map_err(|error| Error::Agent(format!("stored tenant is unreadable: {error}")))?,
        );
    }
    Ok(found)
}

/// A setting of the agent's own (e.g. which tenant was served last).
pub fn setting(db: &Connection, key: &str) -> Result<Option<String>> {
    Ok(db
        .query_row(
            "SELECT value FROM settings WHERE key = ?1",
            params![key],
            |row| row.get(0),
        )
        .optional()?)
}

/// Stores a setting.
pub fn set_setting(db: &Connection, key: &str, value: &str) -> Result<()> {
    db.execute(
        "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = ?2",
        params![key, value],
    )?;
    Ok(())
}

/// An unfinished job as admission sees it: its numbers, without decoding its
/// spec (only a job that asks for GPUs needs its spec, for their selectors).
#[derive(Debug, Clone)]
pub struct ActiveJob {
    /// Row id.
    pub id: i64,
    /// Tenant name.
    pub tenant: String,
    /// Job name.
    pub name: String,
    /// Pending or Running.
    pub phase: Phase,
    /// Why it waits, as last recorded.
    pub reason: Option<String>,
    /// The numbers of why it waits, as last recorded.
    pub message: Option<String>,
    /// What it asks for.
    pub demand: crate::spec::Demand,
    /// A user asked to cancel it.
    pub cancel_requested: bool,
    /// Ports allocated at admission.
    pub ports: BTreeMap<String, u16>,
    /// GPUs assigned at admission, by replica.
    pub gpu_devices: BTreeMap<String, Vec<String>>,
    /// The spec, for jobs that ask for GPUs.
    pub gpu_spec: Option<Job>,
}

/// Every Pending and Running job, oldest first.
pub fn active_jobs(db: &Connection) -> Result<Vec<ActiveJob>> {
    let mut statement = db.prepare_cached(
        "SELECT id, tenant, name, phase, reason, message, millicores, bytes, gpus, cancel_requested, \
         ports, gpu_devices, CASE WHEN gpus > 0 THEN spec END \
         FROM jobs WHERE phase IN ('Pending', 'Running') ORDER BY id",
    )?;
    let rows = statement.query_map([], |row| {
        let decode = |error: serde_json::Error| {
            rusqlite::Error::FromSqlConversionFailure(
                0,
                rusqlite::types::Type::Text,
                Box::new(error),
            )
        };
        let phase: String = row.get(3)?;
        let ports: String = row.get(10)?;
        let gpu_devices: String = row.get(11)?;
        let spec: Option<String> = row.get(12)?;
        Ok(ActiveJob {
            id: row.get(0)?,
            tenant: row.get(1)?,
            name: row.get(2)?,
            phase: Phase::parse(&phase).unwrap_or(Phase::Failed),
            reason: row.get(4)?,
            message: row.get(5)?,
            demand: crate::spec::Demand {
                millicores: row.get::<_, i64>(6)? as u64,
                bytes: row.get::<_, i64>(7)? as u64,
                gpus: row.get::<_, i64>(8)? as u64,
            },
            cancel_requested: row.get::<_, i64>(9)? != 0,
            ports: serde_json::from_str(&ports).map_err(decode)?,
            gpu_devices: serde_json::from_str(&gpu_devices).map_err(decode)?,
            gpu_spec: spec
                .map(|text| serde_json::from_str(&text))
                .transpose()
                .map_err(decode)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Removes every row of one job: its events, attempts, replicas and the job
/// itself. Its id is never given again (the table is AUTOINCREMENT), so
/// nothing that still names it can reach a later job.
pub fn delete_job_rows(db: &Connection, job_id: i64) -> Result<()> {
    for table in ["events", "attempts", "replicas"] {
        db.execute(
            &format!("DELETE FROM {table} WHERE job_id = ?1"),
            params![job_id],
        )?;
    }
    db.execute("DELETE FROM jobs WHERE id = ?1", params![job_id])?;
    Ok(())
}

/// Removes a tenant's row.
pub fn delete_tenant_row(db: &Connection, name: &str) -> Result<()> {
    db.execute("DELETE FROM tenants WHERE name = ?1", params![name])?;
    Ok(())
}

/// Ended jobs whose `ttlSecondsAfterFinished` has run out by `now`, by id
/// (the agent sets `expires_ms` when such a job ends).
pub fn expired_jobs(db: &Connection, now: i64) -> Result<Vec<i64>> {
    let mut statement = db.prepare_cached(
        "SELECT id FROM jobs WHERE expires_ms IS NOT NULL AND expires_ms <= ?1 ORDER BY id",
    )?;
    let rows = statement.query_map(params![now], |row| row.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// When the next ended job's `ttlSecondsAfterFinished` runs out, if any has one.
pub fn next_expiry_ms(db: &Connection) -> Result<Option<i64>> {
    Ok(db.query_row(
        "SELECT MIN(expires_ms) FROM jobs WHERE expires_ms IS NOT NULL",
        [],
        |row| row.get(0),
    )?)
}

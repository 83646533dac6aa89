//! The tables of a home's state database, and bringing a database made by
//! an older moon up to them.

use rusqlite::Connection;

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
-- A service's replicas run as a job (`Service::replica_job`); this row marks
-- the job as a service's and keeps the service's spec as applied.
CREATE TABLE IF NOT EXISTS services (
    job_id INTEGER PRIMARY KEY,
    spec TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"#;

/// Columns added after a MOON_HOME's database may have been made, with
/// their definitions: `CREATE TABLE IF NOT EXISTS` leaves an old table as it was.
const ADDED_COLUMNS: &[(&str, &str, &str)] = &[
    ("jobs", "gpu_devices", "TEXT NOT NULL DEFAULT '{}'"),
    ("jobs", "expires_ms", "INTEGER"),
    ("jobs", "volumes", "TEXT NOT NULL DEFAULT '[]'"),
];

/// Indexes over columns of `ADDED_COLUMNS`, made once the columns exist.
/// `jobs_expiring`: finding the expired jobs does not read every finished one.
const INDEXES_ON_ADDED_COLUMNS: &str =
    "CREATE INDEX IF NOT EXISTS jobs_expiring ON jobs (expires_ms) WHERE expires_ms IS NOT NULL;";

/// Makes whatever of the schema the database lacks.
pub(super) fn apply(connection: &Connection) -> rusqlite::Result<()> {
    connection.execute_batch(SCHEMA)?;
    add_missing_columns(connection)?;
    connection.execute_batch(INDEXES_ON_ADDED_COLUMNS)
}

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

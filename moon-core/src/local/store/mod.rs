//! The local backend's state in SQLite (WAL mode), shared by every client
//! and the agent of one `MOON_HOME`. A row committed here is acknowledged:
//! it survives the death of any moon process.
//!
//! Every SQL statement of the local backend lives in this module, behind
//! functions named for what they record or read, so that the agent and the
//! client speak of jobs, replicas and attempts rather than of rows. rusqlite
//! stays in here too: its errors become moon's [`DatabaseError`] at this
//! boundary (`connection`), and no rusqlite type leaves it. Writes that must
//! land together are grouped by the caller in a transaction
//! (`Connection::transaction`), which every function here accepts in place
//! of a connection.
//!
//! [`DatabaseError`]: crate::error::DatabaseError

mod active_jobs;
mod attempts;
mod clock;
mod connection;
mod events;
mod jobs;
mod replicas;
mod schema;
mod services;
mod settings;
mod status;
mod tenants;

pub use active_jobs::{ActiveJob, active_jobs};
pub use attempts::{
    AttemptKey, abandon_attempt, attempts_in_flight, count_attempts_in_flight, is_in_flight,
    mark_attempt_exited, mark_attempt_running, next_attempt, record_launch,
    running_attempts_of_job,
};
pub use clock::now_ms;
pub use connection::{Connection, open};
pub use events::{add_event, events, events_since, job_events, last_event_seq};
pub use jobs::{
    JobRecord, begin_ending, cancels_asked, count_restart, delete_job_rows, expired_jobs, find_job,
    has_unfinished_jobs, insert_job, job_by_id, jobs, mark_job_finished, mark_job_running,
    next_expiry_ms, request_cancel, running_services, set_job_ports, set_waiting,
};
pub use replicas::{
    ReplicaRecord, add_replica, delete_replica, jobs_with_restart_due, next_restart_ms,
    record_replica_exit, replicas, stop_pending_replicas, stop_unfinished_replicas,
};
pub use services::{insert_service, set_service_scale};
pub use settings::{set_setting, setting};
pub use status::status;
pub use tenants::{delete_tenant_row, put_tenant, tenant, tenants};

//! Services: the row that makes a job a service's, with the service's spec.

use rusqlite::params;

use super::connection::{Connection, database};
use crate::error::{Error, Result};
use crate::spec::Service;

/// Marks job `job_id` as running `service`'s replicas (in the transaction
/// that inserts the job).
pub fn insert_service(db: &Connection, job_id: i64, service: &Service) -> Result<()> {
    let spec = serde_json::to_string(service).map_err(|error| Error::Agent(error.to_string()))?;
    db.raw()
        .execute(
            "INSERT INTO services (job_id, spec) VALUES (?1, ?2)",
            params![job_id, spec],
        )
        .map_err(database)?;
    Ok(())
}

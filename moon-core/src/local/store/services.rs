//! Services: the row that makes a job a service's, with the service's spec.

use rusqlite::params;

use super::connection::{Connection, database};
use crate::error::{Error, Result};
use crate::spec::{Demand, Job, Service};

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

/// Records a service's new replica count: the service's spec, its job's
/// spec and the job's demand, which admission counts against the quota.
pub fn set_service_scale(
    db: &Connection,
    job_id: i64,
    service: &Service,
    job: &Job,
    demand: &Demand,
) -> Result<()> {
    let service =
        serde_json::to_string(service).map_err(|error| Error::Agent(error.to_string()))?;
    let job = serde_json::to_string(job).map_err(|error| Error::Agent(error.to_string()))?;
    db.raw()
        .execute(
            "UPDATE jobs SET spec = ?2, millicores = ?3, bytes = ?4, gpus = ?5 WHERE id = ?1",
            params![
                job_id,
                job,
                demand.millicores as i64,
                demand.bytes as i64,
                demand.gpus as i64
            ],
        )
        .map_err(database)?;
    db.raw()
        .execute(
            "UPDATE services SET spec = ?2 WHERE job_id = ?1",
            params![job_id, service],
        )
        .map_err(database)?;
    Ok(())
}

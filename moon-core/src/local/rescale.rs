//! Changing a running service's replica count: the one path that a user's
//! scale (through the backend) and the autoscaler (in the agent) both take,
//! so that both are held to the tenant's quota the same way. The agent then
//! starts the replicas added, or drains and stops those removed.

use super::admission::{Limits, never_fits};
use super::store::{self, Connection, JobRecord};
use crate::error::{Error, Result};
use crate::spec::{Demand, Service, validate_service};

/// Records `replicas` as the count of the service that `job` runs; refused
/// with [`Error::QuotaExceeded`] when that many replicas could never fit the
/// tenant's quota or `machine`, and with [`Error::Conflict`] when the
/// service is ending.
pub fn rescale(db: &Connection, machine: &Limits, job: &JobRecord, replicas: u32) -> Result<()> {
    let service = job.service.as_ref().ok_or_else(|| Error::NotFound {
        kind: "service",
        name: job.key(),
    })?;
    if job.phase.is_terminal() || job.ending.is_some() {
        return Err(Error::Conflict(format!(
            "service {} is {}: it cannot be scaled",
            job.key(),
            job.phase
        )));
    }
    let scaled = Service {
        replicas,
        ..service.clone()
    };
    validate_service(&scaled)?;
    let spec = scaled.replica_job(replicas);
    let demand = Demand::of(&spec);
    let tenant = store::tenant(db, &service.tenant)?.ok_or_else(|| Error::NotFound {
        kind: "tenant",
        name: service.tenant.clone(),
    })?;
    if let Some(refusal) = never_fits(
        &service.tenant,
        &Limits::of_quota(&tenant.quota),
        machine,
        &demand,
    ) {
        return Err(Error::QuotaExceeded(Box::new(refusal)));
    }
    let tx = db.transaction()?;
    store::set_service_scale(&tx, job.id, &scaled, &spec, &demand)?;
    tx.commit()
}

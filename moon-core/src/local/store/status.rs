//! A job's status as users see it, from its row and its replicas' rows.

use super::connection::Connection;
use super::jobs::JobRecord;
use super::replicas::replicas;
use crate::backend::{JobStatus, ReplicaStatus};
use crate::error::Result;

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

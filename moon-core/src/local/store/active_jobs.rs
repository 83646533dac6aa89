//! Unfinished jobs as admission sees them: their numbers, read in one pass
//! without decoding every spec, so that admission stays cheap with a long
//! queue.

use std::collections::BTreeMap;

use super::connection::{Connection, database};
use super::jobs::undecodable;
use crate::backend::Phase;
use crate::error::Result;
use crate::spec::{Demand, Job};

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
    pub demand: Demand,
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
    let mut statement = db
        .raw()
        .prepare_cached(
            "SELECT id, tenant, name, phase, reason, message, millicores, bytes, gpus, cancel_requested, \
             ports, gpu_devices, CASE WHEN gpus > 0 THEN spec END \
             FROM jobs WHERE phase IN ('Pending', 'Running') ORDER BY id",
        )
        .map_err(database)?;
    let rows = statement
        .query_map([], |row| {
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
                demand: Demand {
                    millicores: row.get::<_, i64>(6)? as u64,
                    bytes: row.get::<_, i64>(7)? as u64,
                    gpus: row.get::<_, i64>(8)? as u64,
                },
                cancel_requested: row.get::<_, i64>(9)? != 0,
                ports: serde_json::from_str(&ports).map_err(undecodable)?,
                gpu_devices: serde_json::from_str(&gpu_devices).map_err(undecodable)?,
                gpu_spec: spec
                    .map(|text| serde_json::from_str(&text))
                    .transpose()
                    .map_err(undecodable)?,
            })
        })
        .map_err(database)?;
    rows.collect::<rusqlite::Result<_>>().map_err(database)
}

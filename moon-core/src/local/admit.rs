//! Admission as the agent runs it. `admission` decides from a snapshot;
//! this builds the snapshot from the database and the machine (capacity,
//! tenants' quotas, what running jobs hold, GPUs read again), then carries
//! the verdicts out: an admitted job gets its ports, its GPUs and its
//! replica rows and turns Running in one transaction; a waiting one has
//! why recorded, with an event when that changed.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::admission::{self, Candidate, Decision, Limits, Snapshot, Usage};
use super::gpus::Gpus;
use super::ports;
use super::services;
use super::store::{self, ActiveJob, Connection, JobRecord, now_ms};
use crate::backend::Phase;
use crate::error::Result;
use crate::rendezvous;
use crate::spec::Role;

/// The setting that keeps which tenant was admitted from last, so that
/// admission takes turns between tenants across the agent's restarts.
const LAST_SERVED: &str = "last_served_tenant";

/// Admits what fits of the pending jobs on a machine of `capacity`;
/// `admitted` is told each job started, with its start time, as soon as
/// its admission is committed.
pub fn admit(
    db: &Connection,
    capacity: Limits,
    gpus: &mut Gpus,
    mut admitted: impl FnMut(&JobRecord, i64),
) -> Result<()> {
    let active = store::active_jobs(db)?;
    let pending: Vec<&ActiveJob> = active
        .iter()
        .filter(|job| job.phase == Phase::Pending && !job.cancel_requested)
        .collect();
    if pending.is_empty() {
        return Ok(());
    }
    let running: Vec<&ActiveJob> = active
        .iter()
        .filter(|job| job.phase == Phase::Running)
        .collect();
    // Health changes while the agent runs (an XID, ECC errors): read the
    // devices again before placing GPUs, so a failed one is not handed out.
    if pending.iter().any(|job| job.demand.gpus > 0) {
        gpus.refresh()?;
    }
    let held: HashSet<&String> = running
        .iter()
        .flat_map(|job| job.gpu_devices.values().flatten())
        .collect();
    let mut snapshot = Snapshot {
        machine: capacity,
        last_served: store::setting(db, LAST_SERVED)?,
        devices: gpus.offer(&held),
        ..Snapshot::default()
    };
    for tenant in store::tenants(db)? {
        snapshot.tenants.insert(
            tenant.name.clone(),
            (Limits::of_quota(&tenant.quota), Usage::default()),
        );
    }
    let mut ports_in_use = HashSet::new();
    for job in &running {
        for usage in [
            &mut snapshot.machine_usage,
            &mut snapshot.tenants.entry(job.tenant.clone()).or_default().1,
        ] {
            usage.demand.millicores += job.demand.millicores;
            usage.demand.bytes += job.demand.bytes;
            usage.demand.gpus += job.demand.gpus;
            usage.jobs += 1;
        }
        ports_in_use.extend(job.ports.values().copied());
    }
    snapshot.queue = pending
        .iter()
        .map(|job| Candidate {
            id: job.id,
            tenant: job.tenant.clone(),
            name: job.name.clone(),
            demand: job.demand,
            gpus: job
                .gpu_spec
                .as_ref()
                .map(admission::gpu_asks)
                .unwrap_or_default(),
        })
        .collect();
    let by_id: HashMap<i64, &ActiveJob> = pending.iter().map(|job| (job.id, *job)).collect();
    for decision in admission::decide(&snapshot) {
        match decision {
            Decision::Admit { id, gpus } => {
                if by_id.contains_key(&id) {
                    let job = store::job_by_id(db, id)?;
                    let started = start_job(db, &job, &mut ports_in_use, &gpus)?;
                    admitted(&job, started);
                }
            }
            Decision::Wait {
                id,
                reason,
                message,
            } => {
                let Some(job) = by_id.get(&id) else {
                    continue;
                };
                if job.reason.as_deref() != Some(reason) || job.message.as_deref() != Some(&message)
                {
                    let record = store::job_by_id(db, id)?;
                    let tx = db.transaction()?;
                    store::set_waiting(&tx, id, reason, &message)?;
                    store::add_event(&tx, &record, "Pending", Phase::Pending, None, &message)?;
                    tx.commit()?;
                }
            }
        }
    }
    Ok(())
}

/// Admits a job: ports, replica rows and the Running phase, in one
/// transaction. Returns when it started.
fn start_job(
    db: &Connection,
    job: &JobRecord,
    ports_in_use: &mut HashSet<u16>,
    gpus: &BTreeMap<String, Vec<String>>,
) -> Result<i64> {
    let port_names = match &job.service {
        Some(_) => services::port_names(&job.spec),
        None => rendezvous::port_names(&job.spec),
    };
    let ports = ports::allocate(port_names, ports_in_use)?;
    let tracker_port = ports.get("tracker").copied().unwrap_or(0);
    let roles: Vec<Role> = job
        .spec
        .roles
        .iter()
        .cloned()
        .chain(rendezvous::hidden_roles(
            &job.spec,
            "127.0.0.1",
            tracker_port,
        ))
        .collect();
    let started = now_ms();
    let tx = db.transaction()?;
    store::mark_job_running(&tx, job.id, started, &ports, gpus)?;
    for (position, role) in roles.iter().enumerate() {
        for index in 0..role.replicas {
            store::add_replica(&tx, job.id, &role.name, index, position)?;
        }
    }
    store::add_event(
        &tx,
        job,
        "Admitted",
        Phase::Running,
        None,
        &format!(
            "admitted; starting {} replicas",
            roles.iter().map(|r| r.replicas).sum::<u32>()
        ),
    )?;
    store::set_setting(&tx, LAST_SERVED, &job.spec.tenant)?;
    tx.commit()?;
    Ok(started)
}

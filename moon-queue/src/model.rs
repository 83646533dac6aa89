//! What admission looks at: the jobs waiting and running, the tenants'
//! quotas and queues, and the room there is.

use std::collections::BTreeMap;

use moon_gpu::GpuSelector;
use moon_gpu::placement::{MachineGpu, NodeGpus};
use moon_spec::spec::Demand;

use crate::limits::{Limits, Usage};

/// A job's key, unique in one [`State`]; the caller maps it to its own.
pub type Id = u64;

/// A job, waiting or running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    /// Its key.
    pub id: Id,
    /// Its tenant.
    pub tenant: String,
    /// The tenant's queue it waits in.
    pub queue: String,
    /// Its name, for reasons that point at it.
    pub name: String,
    /// Its priority class's name (`high`), for reasons.
    pub priority_class: String,
    /// Its priority class's value: higher goes first and may preempt lower.
    pub priority: i32,
    /// Whether a job of higher priority may stop it to take its room.
    pub preemptible: bool,
    /// When it was submitted (or requeued), in any unit that orders: the
    /// earlier goes first among equals.
    pub submitted: u64,
    /// What all its replicas hold together.
    pub demand: Demand,
    /// The replicas that ask for GPUs (`worker-0`), with what they ask.
    pub gpus: Vec<(String, GpuSelector)>,
}

impl Workload {
    /// `tenant/name`.
    pub fn path(&self) -> String {
        format!("{}/{}", self.tenant, self.name)
    }

    /// One job's worth of use.
    pub fn usage(&self) -> Usage {
        Usage::of(self.demand)
    }
}

/// The GPUs a running job holds: each replica's device UUIDs on a machine,
/// or the one node it runs on in a cluster.
pub type Held = BTreeMap<String, Vec<String>>;

/// A job admitted and not finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    /// The job.
    pub workload: Workload,
    /// When it was admitted, in the unit of [`Workload::submitted`]: the
    /// youngest of equal priority is preempted first.
    pub started: u64,
    /// The GPUs it holds.
    pub held: Held,
    /// Being stopped for a job of higher priority: it still holds its room
    /// until it exits, and is not chosen again.
    pub stopping: bool,
}

/// One of a tenant's queues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueShare {
    /// Its weight: its share of the tenant's quota (its nominal quota) is
    /// its weight over the sum of the tenant's weights, and its fair share
    /// of the cluster is its dominant share divided by its weight.
    pub weight: u32,
    /// How far beyond its nominal quota it may borrow what the tenant's
    /// other queues leave unused; `None` for as far as the tenant's quota.
    pub borrowing_limit: Option<Limits>,
}

impl Default for QueueShare {
    fn default() -> Self {
        QueueShare {
            weight: 1,
            borrowing_limit: None,
        }
    }
}

/// A tenant's quota and queues.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TenantQueues {
    /// What its running jobs may hold together.
    pub quota: Limits,
    /// Its queues by name. A job naming a queue not listed waits in a queue
    /// of weight 1 without a limit of its own.
    pub queues: BTreeMap<String, QueueShare>,
}

impl TenantQueues {
    /// The most the queue may hold: its nominal quota plus its borrowing
    /// limit, within the tenant's quota, for each resource the tenant limits.
    pub fn queue_limits(&self, queue: &str) -> Limits {
        let Some(share) = self.queues.get(queue) else {
            return self.quota;
        };
        let Some(borrowing) = share.borrowing_limit else {
            return self.quota;
        };
        let weights: u64 = self
            .queues
            .values()
            .map(|queue| u64::from(queue.weight))
            .sum::<u64>()
            .max(1);
        let weight = u64::from(share.weight);
        let cap = |quota: Option<u64>, borrow: Option<u64>| {
            let quota = quota?;
            let nominal =
                u64::try_from(u128::from(quota) * u128::from(weight) / u128::from(weights))
                    .unwrap_or(quota);
            Some(match borrow {
                Some(borrow) => nominal.saturating_add(borrow).min(quota),
                None => quota,
            })
        };
        Limits {
            millicores: cap(self.quota.millicores, borrowing.millicores),
            bytes: cap(self.quota.bytes, borrowing.bytes),
            gpus: cap(self.quota.gpus, borrowing.gpus),
            jobs: cap(self.quota.jobs, borrowing.jobs),
        }
    }
}

/// Where the room is: one machine or a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The local backend's machine.
    Machine,
    /// A Kubernetes cluster's nodes, at the level of quota and capacity:
    /// CPUs and memory summed over nodes, GPUs node by node.
    Cluster,
}

impl Scope {
    /// `machine` or `cluster`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Machine => "machine",
            Scope::Cluster => "cluster",
        }
    }
}

/// The GPUs there are, as finely as they are known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GpuInventory {
    /// Only a count ([`Capacity::limits`]'s `gpus`).
    Count,
    /// A machine's devices one by one, those running jobs hold marked in use.
    Devices(Vec<MachineGpu>),
    /// A cluster's nodes, their free GPUs net of every pod that holds some.
    Nodes(Vec<NodeGpus>),
}

/// The room there is for jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capacity {
    /// A machine or a cluster.
    pub scope: Scope,
    /// CPUs, memory and GPUs in all (`jobs` is ignored).
    pub limits: Limits,
    /// What is held by others than the running jobs listed (system pods).
    pub others: Demand,
    /// The GPUs, device by device or node by node when known.
    pub gpus: GpuInventory,
}

/// Everything one admission pass looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    /// The room there is.
    pub capacity: Capacity,
    /// Each tenant's quota and queues; a tenant not listed is unlimited.
    pub tenants: BTreeMap<String, TenantQueues>,
    /// Jobs admitted and not finished.
    pub running: Vec<Running>,
    /// Jobs waiting, in any order.
    pub pending: Vec<Workload>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_may_hold_its_nominal_share_plus_what_it_may_borrow() {
        let mut tenant = TenantQueues {
            quota: Limits {
                gpus: Some(12),
                jobs: Some(10),
                ..Limits::default()
            },
            ..TenantQueues::default()
        };
        tenant.queues.insert(
            "research".into(),
            QueueShare {
                weight: 2,
                borrowing_limit: Some(Limits {
                    gpus: Some(1),
                    ..Limits::default()
                }),
            },
        );
        tenant.queues.insert("prod".into(), QueueShare::default());
        let research = tenant.queue_limits("research");
        assert_eq!(research.gpus, Some(9), "8 nominal (2/3 of 12) + 1");
        assert_eq!(research.jobs, Some(10), "no borrowing limit on jobs");
        assert_eq!(tenant.queue_limits("prod"), tenant.quota);
        assert_eq!(tenant.queue_limits("unlisted"), tenant.quota);
    }
}

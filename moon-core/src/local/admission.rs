//! Admission: which pending jobs may start now, and for the rest, why not.
//!
//! Pure: the agent gathers the numbers, this decides. Jobs of one tenant are
//! admitted first in, first out; when the machine is the limit, tenants are
//! served in turn, starting after the one served last, and nothing jumps
//! ahead of a job that waits only for the machine (so a big job is never
//! starved by a stream of small ones).

use std::collections::{BTreeMap, VecDeque};

use moon_gpu::GpuSelector;
use moon_gpu::placement::{MachineGpu, machine};

use crate::error::QuotaRefusal;
use crate::spec::{Demand, Job, TenantQuota, format_bytes, format_cpus};

/// Limits in whole units; `None` is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    /// Millicores.
    pub millicores: Option<u64>,
    /// Bytes.
    pub bytes: Option<u64>,
    /// GPUs.
    pub gpus: Option<u64>,
    /// Running jobs.
    pub jobs: Option<u64>,
}

impl Limits {
    /// A tenant's quota in whole units (the spec was validated).
    pub fn of_quota(quota: &TenantQuota) -> Limits {
        Limits {
            millicores: quota.cpus.as_ref().and_then(|cpus| cpus.millicores().ok()),
            bytes: quota.memory.as_ref().and_then(|memory| memory.bytes().ok()),
            gpus: quota.gpus,
            jobs: quota.jobs,
        }
    }
}

/// What is in use: resources and running jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// Resources held.
    pub demand: Demand,
    /// Jobs admitted and not finished.
    pub jobs: u64,
}

impl Usage {
    fn add(&mut self, demand: Demand) {
        self.demand.millicores += demand.millicores;
        self.demand.bytes += demand.bytes;
        self.demand.gpus += demand.gpus;
        self.jobs += 1;
    }
}

/// A job waiting for admission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Job id (submission order).
    pub id: i64,
    /// Tenant.
    pub tenant: String,
    /// Name, for reasons that point at it.
    pub name: String,
    /// What it would hold.
    pub demand: Demand,
    /// The GPUs of each replica that asks for some (`worker-0`, selector).
    pub gpus: Vec<(String, GpuSelector)>,
}

/// Everything admission looks at.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The machine's capacity (jobs unlimited).
    pub machine: Limits,
    /// What all running jobs hold.
    pub machine_usage: Usage,
    /// Each tenant's limits and usage.
    pub tenants: BTreeMap<String, (Limits, Usage)>,
    /// Pending jobs, in submission order.
    pub queue: Vec<Candidate>,
    /// The tenant admitted from most recently.
    pub last_served: Option<String>,
    /// The machine's GPUs, when it knows them one by one (an inventory from
    /// NVML or a file), those held by running jobs marked in use; `None`
    /// when it only has a count.
    pub devices: Option<Vec<MachineGpu>>,
}

/// The verdict on one pending job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Start it now, with these GPUs per replica (device UUIDs).
    Admit {
        /// Job id.
        id: i64,
        /// Replica (`worker-0`) to its devices; empty without an inventory.
        gpus: BTreeMap<String, Vec<String>>,
    },
    /// Keep it pending; `reason` is short (`Quota`, `Capacity`, `Queued`), `message` names the numbers.
    Wait {
        /// Job id.
        id: i64,
        /// Short reason.
        reason: &'static str,
        /// For people.
        message: String,
    },
}

/// The GPUs each replica of a job asks for (`worker-0`, selector), for
/// the replicas that ask for any.
pub fn gpu_asks(job: &Job) -> Vec<(String, GpuSelector)> {
    job.roles
        .iter()
        .filter_map(|role| Some((role, role.gpus.selector()?)))
        .flat_map(|(role, selector)| {
            (0..role.replicas)
                .map(move |index| (format!("{}-{index}", role.name), selector.clone()))
        })
        .collect()
}

/// Why a job could never run, if so: it asks more than the whole quota or machine.
pub fn never_fits(
    tenant: &str,
    quota: &Limits,
    machine: &Limits,
    demand: &Demand,
) -> Option<QuotaRefusal> {
    if let Some(over) = over_limit(quota, &Usage::default(), demand) {
        let message = format!(
            "tenant {tenant}: job asks {}, quota is {}",
            over.asked(),
            over.limit()
        );
        return Some(over.refusal(format!("tenant {tenant}"), message));
    }
    if let Some(over) = over_limit(machine, &Usage::default(), demand) {
        let message = format!(
            "machine: job asks {}, capacity is {}",
            over.asked(),
            over.limit()
        );
        return Some(over.refusal("machine".into(), message));
    }
    None
}

/// Decides every pending job.
pub fn decide(snapshot: &Snapshot) -> Vec<Decision> {
    let mut queues: BTreeMap<&str, VecDeque<&Candidate>> = BTreeMap::new();
    for candidate in &snapshot.queue {
        queues
            .entry(&candidate.tenant)
            .or_default()
            .push_back(candidate);
    }
    let mut order: Vec<&str> = queues.keys().copied().collect();
    if let Some(last) = &snapshot.last_served {
        let start = order.partition_point(|tenant| *tenant <= last.as_str());
        order.rotate_left(start);
    }

    let mut machine_usage = snapshot.machine_usage;
    let mut tenant_usage: BTreeMap<&str, Usage> = snapshot
        .tenants
        .iter()
        .map(|(name, (_, usage))| (name.as_str(), *usage))
        .collect();
    let mut decisions = Vec::new();
    let mut blocked_by_machine: Option<&Candidate> = None;
    let mut devices = snapshot.devices.clone();

    // One admission per tenant per round, so tenants take turns.
    loop {
        let mut admitted_any = false;
        for tenant in &order {
            let Some(queue) = queues.get_mut(tenant) else {
                continue;
            };
            let Some(head) = queue.front().copied() else {
                continue;
            };
            if let Some(blocker) = blocked_by_machine {
                decisions.push(wait_behind(head, blocker, "machine"));
                queue.pop_front();
                wait_rest(&mut decisions, queue, head);
                continue;
            }
            let limits = snapshot
                .tenants
                .get(*tenant)
                .map(|(limits, _)| *limits)
                .unwrap_or_default();
            let usage = tenant_usage.entry(tenant).or_default();
            if let Some(over) = over_limit(&limits, usage, &head.demand) {
                decisions.push(Decision::Wait {
                    id: head.id,
                    reason: "Quota",
                    message: format!("tenant {tenant}: {}", over.describe()),
                });
                queue.pop_front();
                wait_rest(&mut decisions, queue, head);
                continue;
            }
            if let Some(over) = over_limit(&snapshot.machine, &machine_usage, &head.demand) {
                decisions.push(Decision::Wait {
                    id: head.id,
                    reason: "Capacity",
                    message: format!("machine: {}", over.describe()),
                });
                blocked_by_machine = Some(head);
                queue.pop_front();
                wait_rest(&mut decisions, queue, head);
                continue;
            }
            let gpus = match devices.as_mut() {
                Some(devices) if !head.gpus.is_empty() => match machine::place(devices, &head.gpus)
                {
                    Ok(placed) => {
                        for device in devices.iter_mut() {
                            device.in_use |= placed.iter().any(|r| r.uuids.contains(&device.uuid));
                        }
                        placed
                            .into_iter()
                            .map(|replica| (replica.replica, replica.uuids))
                            .collect()
                    }
                    Err(no_fit) => {
                        decisions.push(Decision::Wait {
                            id: head.id,
                            reason: "Capacity",
                            message: format!("machine: {no_fit}"),
                        });
                        blocked_by_machine = Some(head);
                        queue.pop_front();
                        wait_rest(&mut decisions, queue, head);
                        continue;
                    }
                },
                _ => BTreeMap::new(),
            };
            usage.add(head.demand);
            machine_usage.add(head.demand);
            decisions.push(Decision::Admit { id: head.id, gpus });
            queue.pop_front();
            admitted_any = true;
        }
        if !admitted_any || queues.values().all(VecDeque::is_empty) {
            break;
        }
    }
    decisions
}

fn wait_rest(decisions: &mut Vec<Decision>, queue: &mut VecDeque<&Candidate>, head: &Candidate) {
    for waiting in queue.drain(..) {
        decisions.push(Decision::Wait {
            id: waiting.id,
            reason: "Queued",
            message: format!("waiting behind {}/{}", head.tenant, head.name),
        });
    }
}

fn wait_behind(candidate: &Candidate, blocker: &Candidate, what: &str) -> Decision {
    Decision::Wait {
        id: candidate.id,
        reason: "Queued",
        message: format!(
            "{what}: waiting behind {}/{}, which is first in line for capacity",
            blocker.tenant, blocker.name
        ),
    }
}

struct Over {
    resource: &'static str,
    used: String,
    limit: String,
    asks: String,
}

impl Over {
    fn describe(&self) -> String {
        if self.resource == "jobs" {
            format!("jobs {} of {} running", self.used, self.limit)
        } else {
            format!(
                "{} {} of {} in use, job asks {}",
                self.resource, self.used, self.limit, self.asks
            )
        }
    }

    fn asked(&self) -> String {
        format!("{} {}", self.resource, self.asks)
    }

    fn limit(&self) -> String {
        format!("{} {}", self.resource, self.limit)
    }

    fn refusal(self, scope: String, message: String) -> QuotaRefusal {
        QuotaRefusal::new(
            scope,
            self.resource,
            self.used,
            self.asks,
            self.limit,
            message,
        )
    }
}

/// A resource's name, limit, use, ask, and how to show its amounts.
type ResourceCheck = (&'static str, Option<u64>, u64, u64, fn(u64) -> String);

fn over_limit(limits: &Limits, usage: &Usage, demand: &Demand) -> Option<Over> {
    if let Some(limit) = limits.jobs
        && usage.jobs + 1 > limit
    {
        return Some(Over {
            resource: "jobs",
            used: usage.jobs.to_string(),
            limit: limit.to_string(),
            asks: "1".into(),
        });
    }
    let checks: [ResourceCheck; 3] = [
        (
            "cpus",
            limits.millicores,
            usage.demand.millicores,
            demand.millicores,
            format_cpus,
        ),
        (
            "memory",
            limits.bytes,
            usage.demand.bytes,
            demand.bytes,
            format_bytes,
        ),
        ("gpus", limits.gpus, usage.demand.gpus, demand.gpus, |n| {
            n.to_string()
        }),
    ];
    for (resource, limit, used, asks, show) in checks {
        if let Some(limit) = limit
            && used + asks > limit
        {
            return Some(Over {
                resource,
                used: show(used),
                limit: show(limit),
                asks: show(asks),
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demand(cpus: u64, gpus: u64) -> Demand {
        Demand {
            millicores: cpus * 1000,
            bytes: 1 << 30,
            gpus,
        }
    }

    fn job(id: i64, tenant: &str, cpus: u64, gpus: u64) -> Candidate {
        Candidate {
            id,
            tenant: tenant.into(),
            name: format!("job{id}"),
            demand: demand(cpus, gpus),
            gpus: Vec::new(),
        }
    }

    fn machine(cpus: u64) -> Limits {
        Limits {
            millicores: Some(cpus * 1000),
            bytes: Some(64 << 30),
            gpus: Some(8),
            jobs: None,
        }
    }

    fn admitted(decisions: &[Decision]) -> Vec<i64> {
        decisions
            .iter()
            .filter_map(|decision| match decision {
                Decision::Admit { id, .. } => Some(*id),
                Decision::Wait { .. } => None,
            })
            .collect()
    }

    fn message_of(decisions: &[Decision], wanted: i64) -> String {
        decisions
            .iter()
            .find_map(|decision| match decision {
                Decision::Wait { id, message, .. } if *id == wanted => Some(message.clone()),
                _ => None,
            })
            .unwrap_or_default()
    }

    #[test]
    fn tenant_quota_holds_a_job_with_the_numbers() {
        let quota = Limits {
            gpus: Some(4),
            ..Limits::default()
        };
        let mut snapshot = Snapshot {
            machine: machine(16),
            queue: vec![job(1, "vision", 1, 2)],
            ..Snapshot::default()
        };
        let in_use = Usage {
            demand: demand(1, 4),
            jobs: 1,
        };
        snapshot.tenants.insert("vision".into(), (quota, in_use));
        let decisions = decide(&snapshot);
        assert_eq!(admitted(&decisions), Vec::<i64>::new());
        assert_eq!(
            message_of(&decisions, 1),
            "tenant vision: gpus 4 of 4 in use, job asks 2"
        );
    }

    #[test]
    fn jobs_of_one_tenant_are_first_in_first_out() {
        let snapshot = Snapshot {
            machine: machine(2),
            queue: vec![job(1, "a", 2, 0), job(2, "a", 1, 0)],
            machine_usage: Usage {
                demand: demand(1, 0),
                jobs: 1,
            },
            ..Snapshot::default()
        };
        let decisions = decide(&snapshot);
        assert_eq!(
            admitted(&decisions),
            Vec::<i64>::new(),
            "job 2 must not jump job 1"
        );
        assert_eq!(
            message_of(&decisions, 1),
            "machine: cpus 1 of 2 in use, job asks 2"
        );
        assert_eq!(message_of(&decisions, 2), "waiting behind a/job1");
    }

    #[test]
    fn tenants_take_turns_when_the_machine_is_the_limit() {
        let queue = vec![
            job(1, "a", 1, 0),
            job(2, "a", 1, 0),
            job(3, "b", 1, 0),
            job(4, "b", 1, 0),
        ];
        let mut snapshot = Snapshot {
            machine: machine(2),
            queue,
            ..Snapshot::default()
        };
        assert_eq!(admitted(&decide(&snapshot)), vec![1, 3]);
        snapshot.last_served = Some("b".into());
        snapshot.queue = vec![job(2, "a", 1, 0), job(4, "b", 1, 0)];
        snapshot.machine_usage = Usage {
            demand: demand(1, 0),
            jobs: 1,
        };
        assert_eq!(admitted(&decide(&snapshot)), vec![2]);
        snapshot.last_served = Some("a".into());
        assert_eq!(admitted(&decide(&snapshot)), vec![4]);
    }

    #[test]
    fn running_jobs_quota_counts_jobs() {
        let quota = Limits {
            jobs: Some(1),
            ..Limits::default()
        };
        let mut snapshot = Snapshot {
            machine: machine(8),
            queue: vec![job(5, "nlp", 1, 0)],
            ..Snapshot::default()
        };
        snapshot.tenants.insert(
            "nlp".into(),
            (
                quota,
                Usage {
                    demand: demand(1, 0),
                    jobs: 1,
                },
            ),
        );
        let decisions = decide(&snapshot);
        assert_eq!(message_of(&decisions, 5), "tenant nlp: jobs 1 of 1 running");
    }

    #[test]
    fn a_job_larger_than_the_quota_never_fits() {
        let quota = Limits {
            gpus: Some(4),
            ..Limits::default()
        };
        let refusal = never_fits("vision", &quota, &machine(8), &demand(1, 8)).unwrap();
        assert_eq!(
            refusal,
            QuotaRefusal::new(
                "tenant vision",
                "gpus",
                "0",
                "8",
                "4",
                "tenant vision: job asks gpus 8, quota is gpus 4"
            )
        );
        let refusal = never_fits("vision", &Limits::default(), &machine(2), &demand(3, 0)).unwrap();
        assert_eq!(
            (refusal.scope.as_str(), refusal.resource.as_str()),
            ("machine", "cpus")
        );
        assert_eq!((refusal.asked.as_str(), refusal.limit.as_str()), ("3", "2"));
        assert_eq!(
            refusal.to_string(),
            "machine: job asks cpus 3, capacity is cpus 2"
        );
    }
}

//! One admission pass: every waiting job is admitted whole, left waiting
//! with a reason and a position, or makes room by preempting.
//!
//! Jobs are taken in [`order`](crate::order): priority, fair share, age. A
//! job is admitted when all of it fits at once (gang admission): its
//! tenant's quota, its queue's limit, the machine's or cluster's CPUs and
//! memory, and a GPU for every replica that asks for one, by selector.
//!
//! **Backfill.** The first job of each queue that does not fit holds back
//! what it asks for: a job behind it may still start, but only with room
//! that leaves the held-back amounts free, so it can never delay the jobs
//! ahead of it. A resource a job does not ask for is never in its way.
//!
//! **Preemption.** That first job, when it does not fit its tenant's quota,
//! its queue or the room, may stop running jobs of lower priority that are
//! marked preemptible: the lowest priority first, then the youngest, as
//! few as make it fit. They get their grace period to stop; the job holds
//! back their room meanwhile, and starts on a later pass.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;

use moon_gpu::GpuSelector;
use moon_spec::spec::Demand;

use crate::limits::{Limits, Shortfall, Usage, shortfall};
use crate::model::{GpuInventory, Held, Id, Running, State, TenantQueues, Workload};
use crate::order::{Order, dominant_share, within_queue};
use crate::room::GpuRoom;

/// Why a job waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Its tenant's quota is in use.
    Quota,
    /// Its queue holds all it may, borrowing included.
    QueueLimit,
    /// The machine or cluster has no room for all of it.
    Capacity,
    /// It would fit, but in room held back for jobs ahead of it.
    Queued,
    /// Jobs of lower priority are being stopped to make room for it.
    Preempting,
}

impl Reason {
    /// The short form, for status and events (`Quota`).
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Quota => "Quota",
            Reason::QueueLimit => "QueueLimit",
            Reason::Capacity => "Capacity",
            Reason::Queued => "Queued",
            Reason::Preempting => "Preempting",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A job to start now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    /// The job.
    pub id: Id,
    /// Each replica's GPUs: device UUIDs on a machine, its node in a
    /// cluster; empty when only a count is known.
    pub gpus: Held,
}

/// A running job to stop, with its grace period, and requeue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preemption {
    /// The job to stop.
    pub victim: Id,
    /// The job it makes room for.
    pub by: Id,
    /// For people: `preempted by vision/urgent (priority high 1000 over low 100)`.
    pub message: String,
}

/// A job that keeps waiting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The job.
    pub id: Id,
    /// Why, in short.
    pub reason: Reason,
    /// Why, with the numbers.
    pub message: String,
    /// Its place in its queue's line, from 1.
    pub position: usize,
}

/// What a pass decided.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Jobs to start, in the order they were admitted.
    pub admitted: Vec<Admission>,
    /// Running jobs to stop and requeue.
    pub preempted: Vec<Preemption>,
    /// Jobs that wait, in the order they were considered.
    pub pending: Vec<Pending>,
}

/// Decides every waiting job of `state`.
pub fn plan(state: &State) -> Plan {
    Pass::new(state).run()
}

/// Why a job does not fit now, and whose room would make it fit.
struct Blocked {
    reason: Reason,
    message: String,
    /// Which running jobs could make room: those of this tenant, of this
    /// queue, or any.
    room_of: RoomOf,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum RoomOf {
    Tenant,
    Queue,
    Anyone,
}

/// The queue a job waits in: (tenant, queue).
type QueueKey<'a> = (&'a str, &'a str);

/// Room held back for jobs ahead, per limit, with the first job it is
/// held for.
#[derive(Default)]
struct HeldBack<'a> {
    capacity: Usage,
    tenants: HashMap<&'a str, Usage>,
    queues: HashMap<QueueKey<'a>, Usage>,
    /// GPUs by selector (summed over the jobs that asked with it).
    gpus: Vec<(&'a GpuSelector, u64)>,
    first: Option<&'a Workload>,
}

impl<'a> HeldBack<'a> {
    fn hold(&mut self, job: &'a Workload) {
        let usage = job.usage();
        self.capacity.add(usage);
        self.tenants.entry(&job.tenant).or_default().add(usage);
        self.queues
            .entry((&job.tenant, &job.queue))
            .or_default()
            .add(usage);
        for (_, selector) in &job.gpus {
            match self.gpus.iter_mut().find(|(each, _)| *each == selector) {
                Some((_, count)) => *count += u64::from(selector.count),
                None => self.gpus.push((selector, u64::from(selector.count))),
            }
        }
        self.first.get_or_insert(job);
    }
}

struct Pass<'a> {
    state: &'a State,
    /// Room in all, for shares.
    total: Demand,
    capacity_limits: Limits,
    capacity_used: Usage,
    tenant_used: HashMap<&'a str, Usage>,
    queue_used: HashMap<QueueKey<'a>, Usage>,
    gpus: GpuRoom<'a>,
    held_back: HeldBack<'a>,
    /// Running jobs chosen (or already being) stopped: they keep their room.
    stopping: Vec<bool>,
    plan: Plan,
}

static UNLIMITED: TenantQueues = TenantQueues {
    quota: Limits {
        millicores: None,
        bytes: None,
        gpus: None,
        jobs: None,
    },
    queues: BTreeMap::new(),
};

impl<'a> Pass<'a> {
    fn new(state: &'a State) -> Pass<'a> {
        let capacity = &state.capacity;
        let capacity_limits = Limits {
            jobs: None,
            ..capacity.limits
        };
        let mut capacity_used = Usage {
            demand: capacity.others,
            jobs: 0,
        };
        let mut tenant_used: HashMap<&str, Usage> = HashMap::new();
        let mut queue_used: HashMap<QueueKey, Usage> = HashMap::new();
        for running in &state.running {
            let job = &running.workload;
            capacity_used.add(job.usage());
            tenant_used.entry(&job.tenant).or_default().add(job.usage());
            queue_used
                .entry((&job.tenant, &job.queue))
                .or_default()
                .add(job.usage());
        }
        let gpus = GpuRoom::new(&capacity.gpus);
        let total = Demand {
            millicores: capacity.limits.millicores.unwrap_or(0),
            bytes: capacity.limits.bytes.unwrap_or(0),
            gpus: capacity.limits.gpus.unwrap_or(match &capacity.gpus {
                GpuInventory::Count => 0,
                GpuInventory::Devices(devices) => devices.len() as u64,
                GpuInventory::Nodes(nodes) => {
                    nodes.iter().map(|node| u64::from(node.gpus_total)).sum()
                }
            }),
        };
        Pass {
            state,
            total,
            capacity_limits,
            capacity_used,
            tenant_used,
            queue_used,
            gpus,
            held_back: HeldBack::default(),
            stopping: state
                .running
                .iter()
                .map(|running| running.stopping)
                .collect(),
            plan: Plan::default(),
        }
    }

    fn tenant(&self, name: &str) -> &'a TenantQueues {
        self.state.tenants.get(name).unwrap_or(&UNLIMITED)
    }

    fn share(&self, key: QueueKey) -> f64 {
        let used = self.queue_used.get(&key).copied().unwrap_or_default();
        let weight = self
            .tenant(key.0)
            .queues
            .get(key.1)
            .map_or(1, |share| share.weight);
        dominant_share(&used, &self.total, weight)
    }

    fn run(mut self) -> Plan {
        let mut by_queue: BTreeMap<QueueKey, Vec<&Workload>> = BTreeMap::new();
        for job in &self.state.pending {
            by_queue
                .entry((&job.tenant, &job.queue))
                .or_default()
                .push(job);
        }
        let keys: Vec<QueueKey> = by_queue.keys().copied().collect();
        let shares: Vec<f64> = keys.iter().map(|key| self.share(*key)).collect();
        let queues: Vec<VecDeque<&Workload>> = by_queue
            .into_values()
            .map(|mut jobs| {
                jobs.sort_by(|a, b| within_queue(a, b));
                jobs.into()
            })
            .collect();
        let mut order = Order::new(queues, &shares);
        let mut waiting = vec![0usize; keys.len()];
        let mut head_held = vec![false; keys.len()];
        while let Some((queue, job)) = order.pop() {
            match self.fit(job) {
                Ok(gpus) => {
                    self.take(job);
                    self.plan.admitted.push(Admission { id: job.id, gpus });
                }
                Err(blocked) => {
                    waiting[queue] += 1;
                    let mut pending = Pending {
                        id: job.id,
                        reason: blocked.reason,
                        message: blocked.message,
                        position: waiting[queue],
                    };
                    if !head_held[queue] && blocked.reason != Reason::Queued {
                        head_held[queue] = true;
                        if let Some(message) = self.preempt_for(job, blocked.room_of) {
                            pending.reason = Reason::Preempting;
                            pending.message = message;
                        }
                        self.held_back.hold(job);
                    }
                    self.plan.pending.push(pending);
                }
            }
            order.push(queue, self.share(keys[queue]));
        }
        self.plan
    }

    /// Counts an admitted job's room as used.
    fn take(&mut self, job: &'a Workload) {
        self.capacity_used.add(job.usage());
        self.tenant_used
            .entry(&job.tenant)
            .or_default()
            .add(job.usage());
        self.queue_used
            .entry((&job.tenant, &job.queue))
            .or_default()
            .add(job.usage());
    }

    /// Gives a running job's room back (`back`), or takes it again.
    fn release(&mut self, running: &'a Running, back: bool) {
        let job = &running.workload;
        let usages = [
            &mut self.capacity_used,
            self.tenant_used.entry(&job.tenant).or_default(),
        ];
        for usage in usages {
            if back {
                usage.remove(job.usage());
            } else {
                usage.add(job.usage());
            }
        }
        let queue = self
            .queue_used
            .entry((&job.tenant, &job.queue))
            .or_default();
        if back {
            queue.remove(job.usage());
        } else {
            queue.add(job.usage());
        }
        self.gpus.give(&running.held, &job.gpus, !back);
    }

    /// Whether all of `job` fits now, beside what is held back for jobs
    /// ahead; when it does, its GPUs are taken.
    fn fit(&mut self, job: &'a Workload) -> Result<Held, Blocked> {
        let ask = job.usage();
        let none = Usage::default();
        let tenant = self.tenant(&job.tenant);
        let queue_key = (job.tenant.as_str(), job.queue.as_str());
        let first = self.held_back.first;
        let tenant_used = self.tenant_used.get(job.tenant.as_str()).unwrap_or(&none);
        let tenant_held = self
            .held_back
            .tenants
            .get(job.tenant.as_str())
            .unwrap_or(&none);
        if let Some(short) = shortfall(&tenant.quota, tenant_used, tenant_held, &ask) {
            return Err(blocked(
                &short,
                Reason::Quota,
                format!("tenant {}", job.tenant),
                RoomOf::Tenant,
                first,
            ));
        }
        let queue_limits = tenant.queue_limits(&job.queue);
        if queue_limits != tenant.quota {
            let used = self.queue_used.get(&queue_key).unwrap_or(&none);
            let held = self.held_back.queues.get(&queue_key).unwrap_or(&none);
            if let Some(short) = shortfall(&queue_limits, used, held, &ask) {
                return Err(blocked(
                    &short,
                    Reason::QueueLimit,
                    format!("queue {}/{}", job.tenant, job.queue),
                    RoomOf::Queue,
                    first,
                ));
            }
        }
        let scope = self.state.capacity.scope.as_str();
        if let Some(short) = shortfall(
            &self.capacity_limits,
            &self.capacity_used,
            &self.held_back.capacity,
            &ask,
        ) {
            return Err(blocked(
                &short,
                Reason::Capacity,
                scope.to_string(),
                RoomOf::Anyone,
                first,
            ));
        }
        if job.gpus.is_empty() {
            return Ok(Held::new());
        }
        let held_gpus: Vec<(&GpuSelector, u64, Option<u64>)> = self
            .held_back
            .gpus
            .iter()
            .map(|&(selector, count)| (selector, count, None))
            .collect();
        let mut held_gpus = held_gpus;
        for (selector, _, before) in &mut held_gpus {
            *before = self.gpus.free_accepted(selector);
        }
        let held = self.gpus.take(&job.gpus).map_err(|no_fit| Blocked {
            reason: Reason::Capacity,
            message: format!("{scope}: {no_fit}"),
            room_of: RoomOf::Anyone,
        })?;
        for (selector, count, before) in held_gpus {
            let (Some(before), Some(after)) = (before, self.gpus.free_accepted(selector)) else {
                continue;
            };
            if after < before.min(count) {
                self.gpus.give(&held, &job.gpus, false);
                return Err(Blocked {
                    reason: Reason::Queued,
                    message: format!(
                        "{scope}: {before} free GPUs fit {selector}, and {count} of them are held \
                         for jobs ahead{}",
                        behind(first)
                    ),
                    room_of: RoomOf::Anyone,
                });
            }
        }
        Ok(held)
    }

    /// Picks running jobs to stop so that `job` fits, marks them stopping
    /// and says what it waits for; `None` when no such set exists.
    fn preempt_for(&mut self, job: &'a Workload, room_of: RoomOf) -> Option<String> {
        let state = self.state;
        let mut candidates: Vec<usize> = (0..state.running.len())
            .filter(|&at| {
                let other = &state.running[at].workload;
                let mine = match room_of {
                    RoomOf::Tenant => other.tenant == job.tenant,
                    RoomOf::Queue => other.tenant == job.tenant && other.queue == job.queue,
                    RoomOf::Anyone => true,
                };
                mine && (self.stopping[at] || (other.preemptible && other.priority < job.priority))
            })
            .collect();
        if candidates.is_empty() {
            return None;
        }
        // Jobs already stopping first (they cost nothing more), then the
        // lowest priority, then the youngest.
        candidates.sort_by_key(|&at| {
            let running = &state.running[at];
            (
                !self.stopping[at],
                running.workload.priority,
                std::cmp::Reverse(running.started),
                std::cmp::Reverse(running.workload.id),
            )
        });
        let mut released: Vec<usize> = Vec::new();
        let mut fits = false;
        for at in candidates {
            self.release(&state.running[at], true);
            released.push(at);
            if let Ok(held) = self.fit(job) {
                self.gpus.give(&held, &job.gpus, false);
                fits = true;
                break;
            }
        }
        if fits {
            // As few as will do: keep each (latest first) whose room is not needed.
            for index in (0..released.len()).rev() {
                let at = released[index];
                if self.stopping[at] {
                    continue;
                }
                self.release(&state.running[at], false);
                match self.fit(job) {
                    Ok(held) => {
                        self.gpus.give(&held, &job.gpus, false);
                        released.remove(index);
                    }
                    Err(_) => self.release(&state.running[at], true),
                }
            }
        }
        for &at in &released {
            self.release(&state.running[at], false);
        }
        if !fits {
            return None;
        }
        let mut names = Vec::new();
        for at in released {
            let victim = &state.running[at].workload;
            names.push(victim.path());
            if !self.stopping[at] {
                self.stopping[at] = true;
                self.plan.preempted.push(Preemption {
                    victim: victim.id,
                    by: job.id,
                    message: format!(
                        "preempted by {} (priority {} {} over {} {})",
                        job.path(),
                        job.priority_class,
                        job.priority,
                        victim.priority_class,
                        victim.priority
                    ),
                });
            }
        }
        Some(format!(
            "making room: waiting for {} to stop",
            names.join(", ")
        ))
    }
}

fn behind(first: Option<&Workload>) -> String {
    first.map_or_else(String::new, |job| format!(" (first: {})", job.path()))
}

fn blocked(
    short: &Shortfall,
    reason: Reason,
    scope: String,
    room_of: RoomOf,
    first: Option<&Workload>,
) -> Blocked {
    if short.only_reserved() {
        Blocked {
            reason: Reason::Queued,
            message: format!("{scope}: {}{}", short.describe(), behind(first)),
            room_of,
        }
    } else {
        Blocked {
            reason,
            message: format!("{scope}: {}", short.describe()),
            room_of,
        }
    }
}

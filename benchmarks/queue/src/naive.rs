//! The admission rules of `moon_queue::plan`, done the plain way: the next
//! job is found by looking at every waiting job, and every pod by looking
//! at every node. No index, nothing kept between jobs but the counts. The
//! benchmark asserts that its decisions are exactly moon-queue's.
//!
//! It knows GPUs as a count or node by node (a cluster); a machine's
//! devices are not part of the benchmark.

use std::collections::{BTreeMap, BTreeSet};

use moon_gpu::GpuSelector;
use moon_gpu::placement::{Filter, NoFit, NodeGpus, Scope as NoFitScope};
use moon_queue::order::dominant_share;
use moon_queue::{
    Admission, GpuInventory, Held, Limits, Pending, Plan, Preemption, Reason, Running, State,
    TenantQueues, Usage, Workload, shortfall,
};
use moon_spec::spec::Demand;

/// Decides every waiting job of `state`, as `moon_queue::plan` does.
pub fn plan(state: &State) -> Plan {
    let nodes: &[NodeGpus] = match &state.capacity.gpus {
        GpuInventory::Nodes(nodes) => nodes,
        GpuInventory::Count => &[],
        GpuInventory::Devices(_) => panic!("the naive reference knows no machine devices"),
    };
    let mut naive = Naive {
        state,
        nodes,
        free: nodes.iter().map(|node| node.gpus_free).collect(),
        capacity_used: Usage {
            demand: state.capacity.others,
            jobs: 0,
        },
        used: BTreeMap::new(),
        queue_used: BTreeMap::new(),
        held_capacity: Usage::default(),
        held: BTreeMap::new(),
        held_queue: BTreeMap::new(),
        held_gpus: Vec::new(),
        first_held: None,
        stopping: state
            .running
            .iter()
            .map(|running| running.stopping)
            .collect(),
        plan: Plan::default(),
    };
    for running in &state.running {
        naive.count(&running.workload, true);
    }
    naive.run()
}

struct Naive<'a> {
    state: &'a State,
    nodes: &'a [NodeGpus],
    free: Vec<u32>,
    capacity_used: Usage,
    used: BTreeMap<String, Usage>,
    queue_used: BTreeMap<(String, String), Usage>,
    held_capacity: Usage,
    held: BTreeMap<String, Usage>,
    held_queue: BTreeMap<(String, String), Usage>,
    held_gpus: Vec<(GpuSelector, u64)>,
    first_held: Option<&'a Workload>,
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

impl<'a> Naive<'a> {
    fn tenant(&self, name: &str) -> &'a TenantQueues {
        self.state.tenants.get(name).unwrap_or(&UNLIMITED)
    }

    fn total(&self) -> Demand {
        let limits = self.state.capacity.limits;
        Demand {
            millicores: limits.millicores.unwrap_or(0),
            bytes: limits.bytes.unwrap_or(0),
            gpus: limits.gpus.unwrap_or_else(|| {
                self.nodes
                    .iter()
                    .map(|node| u64::from(node.gpus_total))
                    .sum()
            }),
        }
    }

    fn share(&self, tenant: &str, queue: &str) -> f64 {
        let used = self
            .queue_used
            .get(&(tenant.to_string(), queue.to_string()))
            .copied()
            .unwrap_or_default();
        let weight = self
            .tenant(tenant)
            .queues
            .get(queue)
            .map_or(1, |share| share.weight);
        dominant_share(&used, &self.total(), weight)
    }

    fn count(&mut self, job: &Workload, add: bool) {
        let usage = job.usage();
        let queue = (job.tenant.clone(), job.queue.clone());
        for each in [
            &mut self.capacity_used,
            self.used.entry(job.tenant.clone()).or_default(),
            self.queue_used.entry(queue).or_default(),
        ] {
            if add {
                each.add(usage);
            } else {
                each.remove(usage);
            }
        }
    }

    fn run(mut self) -> Plan {
        let queue_names: Vec<(String, String)> = self
            .state
            .pending
            .iter()
            .map(|job| (job.tenant.clone(), job.queue.clone()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut remaining: Vec<(&Workload, usize)> = self
            .state
            .pending
            .iter()
            .map(|job| (job, queue_index(job, &queue_names)))
            .collect();
        let mut waiting: BTreeMap<usize, usize> = BTreeMap::new();
        let mut head_held: BTreeSet<usize> = BTreeSet::new();
        while !remaining.is_empty() {
            // Every waiting job looked at, every time, against every
            // queue's share as it stands.
            let shares: Vec<f64> = queue_names
                .iter()
                .map(|(tenant, queue)| self.share(tenant, queue))
                .collect();
            let mut best = 0;
            for at in 1..remaining.len() {
                if before(remaining[at], remaining[best], &shares) {
                    best = at;
                }
            }
            let (job, queue) = remaining.remove(best);
            match self.fit(job) {
                Ok(gpus) => {
                    self.count(job, true);
                    self.plan.admitted.push(Admission { id: job.id, gpus });
                }
                Err((reason, message, room_of)) => {
                    let position = waiting.entry(queue).or_default();
                    *position += 1;
                    let mut pending = Pending {
                        id: job.id,
                        reason,
                        message,
                        position: *position,
                    };
                    if reason != Reason::Queued && head_held.insert(queue) {
                        if let Some(message) = self.preempt_for(job, room_of) {
                            pending.reason = Reason::Preempting;
                            pending.message = message;
                        }
                        self.hold_back(job);
                    }
                    self.plan.pending.push(pending);
                }
            }
        }
        self.plan
    }

    fn hold_back(&mut self, job: &'a Workload) {
        let usage = job.usage();
        self.held_capacity.add(usage);
        self.held.entry(job.tenant.clone()).or_default().add(usage);
        self.held_queue
            .entry((job.tenant.clone(), job.queue.clone()))
            .or_default()
            .add(usage);
        for (_, selector) in &job.gpus {
            match self.held_gpus.iter_mut().find(|(each, _)| each == selector) {
                Some((_, count)) => *count += u64::from(selector.count),
                None => self
                    .held_gpus
                    .push((selector.clone(), u64::from(selector.count))),
            }
        }
        self.first_held.get_or_insert(job);
    }

    fn behind(&self) -> String {
        self.first_held
            .map_or_else(String::new, |job| format!(" (first: {})", job.path()))
    }

    #[allow(clippy::type_complexity)]
    fn fit(&mut self, job: &Workload) -> Result<Held, (Reason, String, u8)> {
        let none = Usage::default();
        let ask = job.usage();
        let tenant = self.tenant(&job.tenant);
        let short = shortfall(
            &tenant.quota,
            self.used.get(&job.tenant).unwrap_or(&none),
            self.held.get(&job.tenant).unwrap_or(&none),
            &ask,
        );
        if let Some(short) = short {
            return Err(self.blocked(&short, Reason::Quota, format!("tenant {}", job.tenant), 0));
        }
        let queue_limits = tenant.queue_limits(&job.queue);
        if queue_limits != tenant.quota {
            let key = (job.tenant.clone(), job.queue.clone());
            let short = shortfall(
                &queue_limits,
                self.queue_used.get(&key).unwrap_or(&none),
                self.held_queue.get(&key).unwrap_or(&none),
                &ask,
            );
            if let Some(short) = short {
                let scope = format!("queue {}/{}", job.tenant, job.queue);
                return Err(self.blocked(&short, Reason::QueueLimit, scope, 1));
            }
        }
        let scope = self.state.capacity.scope.as_str();
        let limits = Limits {
            jobs: None,
            ..self.state.capacity.limits
        };
        if let Some(short) = shortfall(&limits, &self.capacity_used, &self.held_capacity, &ask) {
            return Err(self.blocked(&short, Reason::Capacity, scope.to_string(), 2));
        }
        if job.gpus.is_empty() || self.no_nodes() {
            return Ok(Held::new());
        }
        let before: Vec<u64> = self
            .held_gpus
            .iter()
            .map(|(selector, _)| self.free_accepted(selector))
            .collect();
        let mut placed: Vec<usize> = Vec::new();
        for (_, pod) in &job.gpus {
            match self.place(pod) {
                Ok(at) => placed.push(at),
                Err(no_fit) => {
                    for (&at, (_, pod)) in placed.iter().zip(&job.gpus) {
                        self.free[at] += pod.count;
                    }
                    return Err((Reason::Capacity, format!("{scope}: {no_fit}"), 2));
                }
            }
        }
        for ((selector, count), before) in self.held_gpus.clone().iter().zip(before) {
            let after = self.free_accepted(selector);
            if after < before.min(*count) {
                for (&at, (_, pod)) in placed.iter().zip(&job.gpus) {
                    self.free[at] += pod.count;
                }
                let message = format!(
                    "{scope}: {before} free GPUs fit {selector}, and {count} of them are held \
                     for jobs ahead{}",
                    self.behind()
                );
                return Err((Reason::Queued, message, 2));
            }
        }
        Ok(job
            .gpus
            .iter()
            .zip(placed)
            .map(|((replica, _), at)| (replica.clone(), vec![self.nodes[at].name.clone()]))
            .collect())
    }

    /// A cluster without GPU nodes is known only by its count.
    fn no_nodes(&self) -> bool {
        matches!(self.state.capacity.gpus, GpuInventory::Count)
    }

    fn blocked(
        &self,
        short: &moon_queue::Shortfall,
        reason: Reason,
        scope: String,
        room_of: u8,
    ) -> (Reason, String, u8) {
        if short.only_reserved() {
            (
                Reason::Queued,
                format!("{scope}: {}{}", short.describe(), self.behind()),
                room_of,
            )
        } else {
            (reason, format!("{scope}: {}", short.describe()), room_of)
        }
    }

    fn first_failed(node: &NodeGpus, pod: &GpuSelector) -> Option<Filter> {
        if !pod.accepts_model(&node.model) {
            Some(Filter::Model)
        } else if pod
            .min_memory_mib
            .is_some_and(|least| node.memory_mib < least)
        {
            Some(Filter::Memory)
        } else if !pod.accepts(&node.model, node.memory_mib, node.compute_capability) {
            Some(Filter::Capability)
        } else if !node.healthy {
            Some(Filter::Health)
        } else {
            None
        }
    }

    fn free_accepted(&self, selector: &GpuSelector) -> u64 {
        self.nodes
            .iter()
            .zip(&self.free)
            .filter(|(node, _)| Self::first_failed(node, selector).is_none())
            .map(|(_, &free)| u64::from(free))
            .sum()
    }

    /// One pod, node by node: the tightest fit, a used node before an
    /// untouched one, then the name and position.
    fn place(&mut self, pod: &GpuSelector) -> Result<usize, NoFit> {
        let mut best: Option<usize> = None;
        let mut counts: BTreeMap<Filter, usize> = BTreeMap::new();
        for (at, node) in self.nodes.iter().enumerate() {
            let free = self.free[at];
            let failed =
                Self::first_failed(node, pod).or((free < pod.count).then_some(Filter::Free));
            if let Some(filter) = failed {
                *counts.entry(filter).or_default() += 1;
                continue;
            }
            let key = |at: usize| {
                let node = &self.nodes[at];
                (
                    self.free[at] - pod.count,
                    self.free[at] >= node.gpus_total,
                    &node.name,
                    at,
                )
            };
            if best.is_none_or(|best| key(at) < key(best)) {
                best = Some(at);
            }
        }
        match best {
            Some(at) => {
                self.free[at] -= pod.count;
                Ok(at)
            }
            None => Err(NoFit {
                scope: NoFitScope::Cluster,
                selector: pod.clone(),
                candidates: self.nodes.len(),
                passed_over: counts.into_iter().collect(),
                left: 0,
            }),
        }
    }

    fn release(&mut self, running: &Running, back: bool) {
        self.count(&running.workload, !back);
        for (replica, selector) in &running.workload.gpus {
            let Some(node) = running.held.get(replica).and_then(|nodes| nodes.first()) else {
                continue;
            };
            let Some(at) = self.nodes.iter().position(|each| &each.name == node) else {
                continue;
            };
            if back {
                self.free[at] = (self.free[at] + selector.count)
                    .min(self.nodes[at].gpus_total.max(self.free[at]));
            } else {
                self.free[at] = self.free[at].saturating_sub(selector.count);
            }
        }
    }

    fn give_back(&mut self, job: &Workload, held: &Held) {
        for (replica, selector) in &job.gpus {
            if let Some(at) = held
                .get(replica)
                .and_then(|nodes| nodes.first())
                .and_then(|node| self.nodes.iter().position(|each| &each.name == node))
            {
                self.free[at] += selector.count;
            }
        }
    }

    fn preempt_for(&mut self, job: &Workload, room_of: u8) -> Option<String> {
        let state = self.state;
        let mut candidates: Vec<usize> = (0..state.running.len())
            .filter(|&at| {
                let other = &state.running[at].workload;
                let mine = match room_of {
                    0 => other.tenant == job.tenant,
                    1 => other.tenant == job.tenant && other.queue == job.queue,
                    _ => true,
                };
                mine && (self.stopping[at] || (other.preemptible && other.priority < job.priority))
            })
            .collect();
        if candidates.is_empty() {
            return None;
        }
        candidates.sort_by_key(|&at| {
            let running = &state.running[at];
            (
                !self.stopping[at],
                running.workload.priority,
                std::cmp::Reverse(running.started),
                std::cmp::Reverse(running.workload.id),
            )
        });
        let mut released = Vec::new();
        let mut fits = false;
        for at in candidates {
            self.release(&state.running[at], true);
            released.push(at);
            if let Ok(held) = self.fit(job) {
                self.give_back(job, &held);
                fits = true;
                break;
            }
        }
        if fits {
            for index in (0..released.len()).rev() {
                let at = released[index];
                if self.stopping[at] {
                    continue;
                }
                self.release(&state.running[at], false);
                match self.fit(job) {
                    Ok(held) => {
                        self.give_back(job, &held);
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

/// Whether `a` goes before `b`: priority, then its queue's share, then age.
fn before(a: (&Workload, usize), b: (&Workload, usize), shares: &[f64]) -> bool {
    let ((a, qa), (b, qb)) = (a, b);
    std::cmp::Reverse(a.priority)
        .cmp(&std::cmp::Reverse(b.priority))
        .then(shares[qa].total_cmp(&shares[qb]))
        .then((a.submitted, a.id, qa).cmp(&(b.submitted, b.id, qb)))
        .is_lt()
}

fn queue_index(job: &Workload, queues: &[(String, String)]) -> usize {
    queues
        .iter()
        .position(|(tenant, queue)| *tenant == job.tenant && *queue == job.queue)
        .unwrap_or(0)
}

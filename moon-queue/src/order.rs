//! The order jobs are considered in: priority first, then the fair share of
//! their queue (its dominant resource share over its weight, lowest first),
//! then age. Each queue keeps its jobs by priority and age; a heap holds
//! each queue's first job, keyed by the queue's share as it stands, so that
//! a queue that was just served waits its turn again.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, VecDeque};

use moon_spec::spec::Demand;

use crate::limits::Usage;
use crate::model::Workload;

/// A queue's dominant share: the largest fraction of the room of any
/// resource (CPUs, memory, GPUs) that its running jobs hold, divided by
/// its weight. Resources there are none of do not count.
pub fn dominant_share(used: &Usage, total: &Demand, weight: u32) -> f64 {
    let fraction = |used: u64, total: u64| {
        if total == 0 {
            0.0
        } else {
            used as f64 / total as f64
        }
    };
    let dominant = fraction(used.demand.millicores, total.millicores)
        .max(fraction(used.demand.bytes, total.bytes))
        .max(fraction(used.demand.gpus, total.gpus));
    dominant / f64::from(weight.max(1))
}

/// The order of jobs within one queue: higher priority, then earlier, then
/// the smaller key.
pub fn within_queue(a: &Workload, b: &Workload) -> Ordering {
    b.priority
        .cmp(&a.priority)
        .then(a.submitted.cmp(&b.submitted))
        .then(a.id.cmp(&b.id))
}

/// Where a queue's first job stands against other queues' first jobs.
#[derive(Debug, Clone, Copy)]
struct Key {
    priority: i32,
    share: f64,
    submitted: u64,
    id: u64,
    queue: usize,
}

impl Key {
    fn rank(&self) -> (Reverse<i32>, u64, u64, usize) {
        (Reverse(self.priority), self.submitted, self.id, self.queue)
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> Ordering {
        Reverse(self.priority)
            .cmp(&Reverse(other.priority))
            .then(self.share.total_cmp(&other.share))
            .then(self.rank().cmp(&other.rank()))
    }
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Key {}

/// The queues' jobs, handed out one at a time in admission order.
pub struct Order<'a> {
    queues: Vec<VecDeque<&'a Workload>>,
    heap: BinaryHeap<Reverse<Key>>,
}

impl<'a> Order<'a> {
    /// `queues[q]` holds queue `q`'s jobs in [`within_queue`] order;
    /// `shares[q]` is its share now.
    pub fn new(queues: Vec<VecDeque<&'a Workload>>, shares: &[f64]) -> Order<'a> {
        let mut order = Order {
            queues,
            heap: BinaryHeap::new(),
        };
        for (queue, share) in shares.iter().enumerate() {
            order.push(queue, *share);
        }
        order
    }

    /// The next job and its queue. The queue is out of line until
    /// [`Order::push`] puts it back with its share once the job is decided.
    pub fn pop(&mut self) -> Option<(usize, &'a Workload)> {
        let Reverse(key) = self.heap.pop()?;
        let job = self.queues[key.queue].pop_front()?;
        Some((key.queue, job))
    }

    /// Puts queue `queue` back in line with its share as it now is.
    pub fn push(&mut self, queue: usize, share: f64) {
        if let Some(first) = self.queues[queue].front() {
            self.heap.push(Reverse(Key {
                priority: first.priority,
                share,
                submitted: first.submitted,
                id: first.id,
                queue,
            }));
        }
    }
}

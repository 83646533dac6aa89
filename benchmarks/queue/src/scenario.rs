//! A seeded synthetic cluster with its tenants, running jobs and a queue of
//! waiting jobs, the same on every run.
//!
//! - **Nodes**: GPU nodes of five models as GPU Feature Discovery names
//!   them, as in the GPU placement benchmark (H100 80GB ×8, A100 40GB ×4,
//!   A100 80GB ×8, L4 ×1/2/4/8, T4 ×1/4), 2% unhealthy, each with 64 CPUs
//!   and 512 GiB; a tenth of the CPUs held by pods outside moon.
//! - **Tenants**: 40, each with one to three queues of weight 1 to 3 (some
//!   with a borrowing limit), a quota of GPUs, CPUs and jobs.
//! - **Running**: jobs placed first, a quarter of the GPUs' worth, of low
//!   priority and preemptible for the most part.
//! - **Waiting**: CPU-only jobs of 1 to 8 replicas, and GPU gangs of 1 to
//!   16 pods with selectors such as `H100:8`, `80GB+:1`, `A100|H100:4`;
//!   priorities low (10, preemptible), normal (100) and high (1000).

use std::collections::BTreeMap;

use moon_gpu::ComputeCapability;
use moon_gpu::GpuSelector;
use moon_gpu::placement::NodeGpus;
use moon_gpu::placement::cluster::Placer;
use moon_queue::{
    Capacity, GpuInventory, Limits, QueueShare, Running, Scope, State, TenantQueues, Workload,
};
use moon_spec::spec::Demand;

/// SplitMix64: a seeded generator with no dependency.
pub struct Random(u64);

impl Random {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Random {
        Random(seed)
    }

    /// A number below `bound`.
    pub fn below(&mut self, bound: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % bound
    }

    fn pick<'a, T>(&mut self, weighted: &'a [(T, u64)]) -> &'a T {
        let total: u64 = weighted.iter().map(|(_, weight)| weight).sum();
        let mut at = self.below(total);
        for (item, weight) in weighted {
            if at < *weight {
                return item;
            }
            at -= weight;
        }
        &weighted[0].0
    }
}

/// A GFD product label, memory in MiB, compute capability, GPU counts.
type Model = (&'static str, u64, (u32, u32), &'static [u32]);

const MODELS: [(Model, u64); 5] = [
    (("NVIDIA-H100-80GB-HBM3", 81_559, (9, 0), &[8]), 3),
    (("NVIDIA-A100-SXM4-40GB", 40_960, (8, 0), &[4]), 2),
    (("NVIDIA-A100-SXM4-80GB", 81_920, (8, 0), &[8]), 2),
    (("NVIDIA-L4", 23_034, (8, 9), &[1, 2, 4, 8]), 2),
    (("Tesla-T4", 15_360, (7, 5), &[1, 4]), 1),
];

const SELECTORS: [(&str, u64); 12] = [
    ("H100:2", 4),
    ("H100:8", 1),
    ("80GB+:1", 4),
    ("A100|H100:4", 2),
    ("1", 4),
    ("2", 2),
    ("L4:1", 3),
    ("40GB+:2", 2),
    ("cc8.9+:1", 2),
    ("T4:1", 2),
    ("A100:8", 1),
    ("80GB+,cc9.0+:4", 1),
];

/// Pods (replicas) per job, by its id, to count pods admitted.
pub type Pods = BTreeMap<u64, u64>;

/// The state for `nodes` nodes and `pending` waiting jobs, and each job's pods.
pub fn generate(seed: u64, nodes: usize, pending: usize) -> (State, Pods) {
    let mut random = Random::new(seed);
    let mut cluster: Vec<NodeGpus> = (0..nodes)
        .map(|at| {
            let (model, memory_mib, (major, minor), sizes) = *random.pick(&MODELS);
            let total = sizes[random.below(sizes.len() as u64) as usize];
            NodeGpus {
                name: format!("gpu-{:05}", (at * 7_919) % nodes.max(1)),
                model: model.to_string(),
                memory_mib,
                compute_capability: Some(ComputeCapability { major, minor }),
                gpus_total: total,
                gpus_free: total,
                healthy: random.below(50) != 0,
            }
        })
        .collect();
    let cpus = 64_000 * nodes as u64;
    let memory = (512u64 << 30) * nodes as u64;

    let mut tenants = BTreeMap::new();
    let tenant_names: Vec<String> = (0..40).map(|at| format!("team-{at:02}")).collect();
    for name in &tenant_names {
        let mut queues = BTreeMap::new();
        for at in 0..=random.below(3) {
            let borrowing_limit = (random.below(3) == 0).then(|| Limits {
                gpus: Some(random.below(64)),
                ..Limits::default()
            });
            queues.insert(
                format!("q{at}"),
                QueueShare {
                    weight: 1 + random.below(3) as u32,
                    borrowing_limit,
                },
            );
        }
        let quota = Limits {
            millicores: Some((2_000 + random.below(6_000)) * 1_000),
            bytes: None,
            gpus: Some(128 + random.below(512)),
            jobs: Some(100 + random.below(400)),
        };
        tenants.insert(name.clone(), TenantQueues { quota, queues });
    }

    let selectors: Vec<(GpuSelector, u64)> = SELECTORS
        .iter()
        .map(|(text, weight)| (text.parse().expect("a valid selector"), *weight))
        .collect();
    let mut pods = Pods::new();
    let make = |random: &mut Random, id: u64, pods: &mut Pods| -> Workload {
        let tenant = &tenant_names[random.below(tenant_names.len() as u64) as usize];
        let queues: Vec<&String> = tenants[tenant].queues.keys().collect();
        let queue = queues[random.below(queues.len() as u64) as usize].clone();
        let (class, priority, preemptible) = *random.pick(&[
            (("low", 10, true), 5),
            (("normal", 100, false), 4),
            (("high", 1000, false), 1),
        ]);
        let mut gpus = Vec::new();
        let replicas;
        let cpus_each = 1 + random.below(8);
        if random.below(5) < 2 {
            replicas = 1 + random.below(8);
        } else {
            let selector = random.pick(&selectors).clone();
            replicas = *random.pick(&[(1, 6), (2, 3), (4, 3), (8, 2), (16, 1)]);
            for index in 0..replicas {
                gpus.push((format!("worker-{index}"), selector.clone()));
            }
        }
        pods.insert(id, replicas);
        Workload {
            id,
            tenant: tenant.clone(),
            queue,
            name: format!("job-{id:05}"),
            priority_class: class.to_string(),
            priority,
            preemptible,
            submitted: id,
            demand: Demand {
                millicores: replicas * cpus_each * 1_000,
                bytes: replicas * (cpus_each << 32),
                gpus: gpus
                    .iter()
                    .map(|(_, s): &(String, GpuSelector)| u64::from(s.count))
                    .sum(),
            },
            gpus,
        }
    };

    // Running jobs: placed until a quarter of the GPUs are held.
    let all_gpus: u64 = cluster.iter().map(|node| u64::from(node.gpus_total)).sum();
    let mut running = Vec::new();
    let mut held_gpus = 0;
    let mut id = 0;
    {
        let mut placer = Placer::new(&cluster);
        while held_gpus < all_gpus / 4 && id < 100_000 {
            id += 1;
            let job = make(&mut random, id, &mut pods);
            let selectors: Vec<GpuSelector> = job.gpus.iter().map(|(_, s)| s.clone()).collect();
            let Ok(placed) = placer.place_all(&selectors) else {
                continue;
            };
            held_gpus += job.demand.gpus;
            let held = job
                .gpus
                .iter()
                .zip(placed)
                .map(|((replica, _), at)| (replica.clone(), vec![placer.name(at).to_string()]))
                .collect();
            running.push(Running {
                workload: job,
                started: id,
                held,
                stopping: false,
            });
        }
        let free: Vec<u32> = (0..cluster.len()).map(|at| placer.free(at)).collect();
        drop(placer);
        for (node, free) in cluster.iter_mut().zip(free) {
            node.gpus_free = free;
        }
    }
    let pending_jobs: Vec<Workload> = (0..pending as u64)
        .map(|at| make(&mut random, id + 1 + at, &mut pods))
        .collect();
    let state = State {
        capacity: Capacity {
            scope: Scope::Cluster,
            limits: Limits {
                millicores: Some(cpus),
                bytes: Some(memory),
                gpus: None,
                jobs: None,
            },
            others: Demand {
                millicores: cpus / 10,
                bytes: memory / 10,
                gpus: 0,
            },
            gpus: GpuInventory::Nodes(cluster),
        },
        tenants,
        running,
        pending: pending_jobs,
    };
    (state, pods)
}

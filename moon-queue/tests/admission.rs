//! The admission rules, case by case, through the public API.

use moon_gpu::placement::{MachineGpu, NodeGpus};
use moon_queue::{
    Capacity, GpuInventory, Limits, Plan, QueueShare, Reason, Running, Scope, State, TenantQueues,
    Workload, plan,
};
use moon_spec::spec::Demand;

fn job(id: u64, tenant: &str, cpus: u64, gpus: &[&str]) -> Workload {
    let gpus: Vec<(String, moon_gpu::GpuSelector)> = gpus
        .iter()
        .enumerate()
        .map(|(index, text)| (format!("worker-{index}"), text.parse().unwrap()))
        .collect();
    Workload {
        id,
        tenant: tenant.into(),
        queue: "default".into(),
        name: format!("job-{id}"),
        priority_class: "normal".into(),
        priority: 100,
        preemptible: false,
        submitted: id,
        demand: Demand {
            millicores: cpus * 1000,
            bytes: 0,
            gpus: gpus.iter().map(|(_, s)| u64::from(s.count)).sum(),
        },
        gpus,
    }
}

fn prioritized(mut job: Workload, class: &str, priority: i32, preemptible: bool) -> Workload {
    job.priority_class = class.into();
    job.priority = priority;
    job.preemptible = preemptible;
    job
}

fn machine(cpus: u64) -> Capacity {
    Capacity {
        scope: Scope::Machine,
        limits: Limits {
            millicores: Some(cpus * 1000),
            ..Limits::default()
        },
        others: Demand::default(),
        gpus: GpuInventory::Count,
    }
}

fn h100(name: &str, total: u32, free: u32) -> NodeGpus {
    gpu_node(name, "NVIDIA-H100-80GB-HBM3", 81_559, total, free)
}

fn gpu_node(name: &str, model: &str, memory_mib: u64, total: u32, free: u32) -> NodeGpus {
    NodeGpus {
        name: name.into(),
        model: model.into(),
        memory_mib,
        compute_capability: None,
        gpus_total: total,
        gpus_free: free,
        healthy: true,
    }
}

fn cluster(cpus: u64, nodes: Vec<NodeGpus>) -> Capacity {
    Capacity {
        scope: Scope::Cluster,
        limits: Limits {
            millicores: Some(cpus * 1000),
            ..Limits::default()
        },
        others: Demand::default(),
        gpus: GpuInventory::Nodes(nodes),
    }
}

fn state(capacity: Capacity, pending: Vec<Workload>) -> State {
    State {
        capacity,
        tenants: Default::default(),
        running: Vec::new(),
        pending,
    }
}

fn running(job: Workload, started: u64) -> Running {
    Running {
        workload: job,
        started,
        held: Default::default(),
        stopping: false,
    }
}

fn admitted(plan: &Plan) -> Vec<u64> {
    plan.admitted.iter().map(|admission| admission.id).collect()
}

/// Each waiting job as (id, reason, position, message).
fn waiting(plan: &Plan) -> Vec<(u64, Reason, usize, String)> {
    plan.pending
        .iter()
        .map(|pending| {
            (
                pending.id,
                pending.reason,
                pending.position,
                pending.message.clone(),
            )
        })
        .collect()
}

#[test]
fn higher_priority_goes_first_then_the_earlier() {
    let pending = vec![
        job(1, "a", 2, &[]),
        prioritized(job(2, "a", 2, &[]), "high", 1000, false),
        job(3, "a", 2, &[]),
    ];
    let plan = plan(&state(machine(4), pending));
    assert_eq!(admitted(&plan), [2, 1]);
    assert_eq!(
        waiting(&plan),
        [(
            3,
            Reason::Capacity,
            1,
            "machine: cpus 4 of 4 in use, job asks 2".into()
        )]
    );
}

#[test]
fn queues_share_the_room_by_dominant_share_over_weight() {
    // Six one-CPU jobs in each of two tenants' queues, room for six.
    let pending: Vec<Workload> = (1..=6)
        .map(|id| job(id, "a", 1, &[]))
        .chain((11..=16).map(|id| job(id, "b", 1, &[])))
        .collect();
    let plan_even = plan(&state(machine(6), pending.clone()));
    let count = |plan: &Plan, tenant_ids: std::ops::RangeInclusive<u64>| {
        admitted(plan)
            .iter()
            .filter(|id| tenant_ids.contains(id))
            .count()
    };
    assert_eq!(
        (count(&plan_even, 1..=6), count(&plan_even, 11..=16)),
        (3, 3)
    );

    // Tenant a's queue weighs 2: it gets twice the room.
    let mut weighted = state(machine(6), pending);
    let mut a = TenantQueues::default();
    a.queues.insert(
        "default".into(),
        QueueShare {
            weight: 2,
            borrowing_limit: None,
        },
    );
    weighted.tenants.insert("a".into(), a);
    let plan = plan(&weighted);
    assert_eq!((count(&plan, 1..=6), count(&plan, 11..=16)), (4, 2));
    // Positions count within each queue; at equal shares the earlier job
    // is considered first.
    let positions: Vec<(u64, usize)> = plan.pending.iter().map(|p| (p.id, p.position)).collect();
    assert_eq!(
        positions,
        [(5, 1), (6, 2), (13, 1), (14, 2), (15, 3), (16, 4)]
    );
}

#[test]
fn a_gang_is_admitted_whole_or_not_at_all() {
    // Four replicas of one GPU each; three GPUs free.
    let capacity = cluster(64, vec![h100("a", 8, 2), h100("b", 8, 1)]);
    let gang = job(1, "a", 4, &["H100:1", "H100:1", "H100:1", "H100:1"]);
    let small = job(2, "a", 1, &["H100:1"]);
    let plan = plan(&state(capacity, vec![gang, small]));
    assert!(admitted(&plan).is_empty(), "{plan:?}");
    assert_eq!(
        waiting(&plan),
        [
            (
                1,
                Reason::Capacity,
                1,
                "cluster: 0/2 nodes fit H100:1: 2 have no free GPU".into()
            ),
            (
                2,
                Reason::Queued,
                2,
                "cluster: 3 free GPUs fit H100:1, and 4 of them are held for jobs ahead \
                 (first: a/job-1)"
                    .into()
            ),
        ]
    );
}

#[test]
fn backfill_uses_only_room_the_jobs_ahead_cannot_use() {
    let capacity = cluster(
        16,
        vec![h100("h", 8, 4), gpu_node("t", "Tesla-T4", 15_360, 4, 4)],
    );
    let pending = vec![
        job(1, "a", 2, &["H100:8"]), // waits for 8 H100s; 4 are free
        job(2, "a", 1, &["H100:1"]), // would take one of the head's
        job(3, "a", 1, &["T4:1"]),   // a model the head cannot use
        job(4, "a", 12, &[]),        // CPUs: 16 less 2 held for the head
        job(5, "a", 3, &[]),         // fits, but in CPUs held for the head
    ];
    let plan = plan(&state(capacity, pending));
    assert_eq!(admitted(&plan), [3, 4]);
    let reasons: Vec<(u64, Reason)> = plan.pending.iter().map(|p| (p.id, p.reason)).collect();
    assert_eq!(
        reasons,
        [
            (1, Reason::Capacity),
            (2, Reason::Queued),
            (5, Reason::Queued)
        ]
    );
    assert_eq!(
        plan.pending[2].message,
        "cluster: cpus 13 of 16 in use and 2 held for jobs ahead, job asks 3 (first: a/job-1)"
    );
}

#[test]
fn a_tenant_quota_holds_its_jobs_with_the_numbers_and_keeps_their_order() {
    let mut state = state(
        machine(64),
        vec![
            job(1, "a", 4, &[]),
            job(2, "a", 1, &[]),
            job(3, "b", 1, &[]),
        ],
    );
    state.tenants.insert(
        "a".into(),
        TenantQueues {
            quota: Limits {
                millicores: Some(4000),
                jobs: Some(2),
                ..Limits::default()
            },
            ..TenantQueues::default()
        },
    );
    state.running.push(running(job(9, "a", 2, &[]), 0));
    let plan = plan(&state);
    assert_eq!(admitted(&plan), [3]);
    assert_eq!(
        waiting(&plan),
        [
            (
                1,
                Reason::Quota,
                1,
                "tenant a: cpus 2 of 4 in use, job asks 4".into()
            ),
            (
                2,
                Reason::Queued,
                2,
                "tenant a: jobs 1 of 2 running and 1 held for jobs ahead (first: a/job-1)".into()
            ),
        ]
    );
}

#[test]
fn a_queue_borrows_up_to_its_limit() {
    let mut state = state(machine(64), Vec::new());
    let mut tenant = TenantQueues {
        quota: Limits {
            gpus: Some(8),
            ..Limits::default()
        },
        ..TenantQueues::default()
    };
    tenant.queues.insert(
        "research".into(),
        QueueShare {
            weight: 1,
            borrowing_limit: Some(Limits {
                gpus: Some(2),
                ..Limits::default()
            }),
        },
    );
    tenant.queues.insert("prod".into(), QueueShare::default());
    state.tenants.insert("a".into(), tenant);
    state.capacity.limits.gpus = Some(16);
    for id in 1..=4 {
        let mut research = job(id, "a", 1, &[]);
        research.queue = "research".into();
        research.demand.gpus = 2;
        state.pending.push(research);
    }
    let plan = plan(&state);
    // Nominal 4 (half of 8) plus 2 borrowed: the fourth job of 2 GPUs waits.
    assert_eq!(admitted(&plan), [1, 2, 3]);
    assert_eq!(
        waiting(&plan),
        [(
            4,
            Reason::QueueLimit,
            1,
            "queue a/research: gpus 6 of 6 in use, job asks 2".into()
        )]
    );
}

#[test]
fn a_higher_priority_job_stops_the_fewest_youngest_preemptible_jobs_of_lower_priority() {
    let low = |id, started| running(prioritized(job(id, "b", 2, &[]), "low", 10, true), started);
    let mut state = state(machine(8), Vec::new());
    state.running = vec![
        low(1, 100),
        low(2, 300),
        low(3, 200),
        // Not preemptible, and of equal priority: never chosen.
        running(prioritized(job(4, "b", 1, &[]), "low", 10, false), 400),
        running(prioritized(job(5, "a", 1, &[]), "high", 1000, true), 500),
    ];
    state.pending = vec![prioritized(job(6, "a", 4, &[]), "high", 1000, false)];
    let plan = plan(&state);
    assert!(admitted(&plan).is_empty());
    let victims: Vec<(u64, u64, &str)> = plan
        .preempted
        .iter()
        .map(|p| (p.victim, p.by, p.message.as_str()))
        .collect();
    // 8 CPUs, all in use: the job needs 4, so the two youngest low jobs go.
    assert_eq!(
        victims,
        [
            (
                2,
                6,
                "preempted by a/job-6 (priority high 1000 over low 10)"
            ),
            (
                3,
                6,
                "preempted by a/job-6 (priority high 1000 over low 10)"
            ),
        ]
    );
    assert_eq!(
        waiting(&plan),
        [(
            6,
            Reason::Preempting,
            1,
            "making room: waiting for b/job-2, b/job-3 to stop".into()
        )]
    );

    // On the next pass they are still stopping: nothing more is preempted,
    // and no one else takes the room being freed.
    let mut next = state.clone();
    for at in [1, 2] {
        next.running[at].stopping = true;
    }
    next.pending
        .push(prioritized(job(7, "c", 2, &[]), "low", 10, false));
    let plan_next = moon_queue::plan(&next);
    assert!(plan_next.preempted.is_empty());
    assert!(admitted(&plan_next).is_empty());
    assert_eq!(plan_next.pending[0].reason, Reason::Preempting);

    // Once they are gone, the job starts.
    next.running.retain(|running| !running.stopping);
    assert_eq!(admitted(&moon_queue::plan(&next)), [6]);
}

#[test]
fn no_one_is_preempted_when_even_all_of_them_would_not_make_room() {
    let mut state = state(machine(8), Vec::new());
    state.running = vec![
        running(prioritized(job(1, "b", 2, &[]), "low", 10, true), 1),
        running(prioritized(job(2, "b", 6, &[]), "low", 10, false), 2),
    ];
    state.pending = vec![prioritized(job(3, "a", 4, &[]), "high", 1000, false)];
    let plan = plan(&state);
    assert!(plan.preempted.is_empty());
    assert_eq!(plan.pending[0].reason, Reason::Capacity);
}

#[test]
fn preemption_gives_back_gpus_on_the_nodes_the_victims_held() {
    let capacity = cluster(64, vec![h100("a", 8, 0), h100("b", 8, 4)]);
    let mut state = state(capacity, Vec::new());
    let mut victim = running(prioritized(job(1, "b", 1, &["H100:4"]), "low", 10, true), 1);
    victim.held.insert("worker-0".into(), vec!["b".into()]);
    let mut kept = running(prioritized(job(2, "b", 1, &["H100:8"]), "low", 10, true), 0);
    kept.held.insert("worker-0".into(), vec!["a".into()]);
    state.running = vec![victim, kept];
    state.pending = vec![prioritized(
        job(3, "a", 1, &["H100:8"]),
        "high",
        1000,
        false,
    )];
    let plan = plan(&state);
    let victims: Vec<u64> = plan.preempted.iter().map(|p| p.victim).collect();
    // The younger job alone frees all of node b.
    assert_eq!(victims, [1]);
}

#[test]
fn a_machine_hands_out_devices_by_uuid() {
    let device = |index: u32, in_use| MachineGpu {
        uuid: format!("GPU-{index}"),
        index,
        model: "NVIDIA H100 80GB HBM3".into(),
        memory_mib: 81_559,
        compute_capability: None,
        healthy: true,
        in_use,
    };
    let mut capacity = machine(16);
    capacity.gpus =
        GpuInventory::Devices(vec![device(0, true), device(1, false), device(2, false)]);
    let plan = plan(&state(
        capacity,
        vec![
            job(1, "a", 1, &["H100:1", "H100:1"]),
            job(2, "a", 1, &["1"]),
        ],
    ));
    assert_eq!(admitted(&plan), [1]);
    let held: Vec<(&String, &Vec<String>)> = plan.admitted[0].gpus.iter().collect();
    assert_eq!(held.len(), 2);
    assert!(
        plan.pending[0]
            .message
            .starts_with("machine: worker-0 asks 1: 3 devices"),
        "{}",
        plan.pending[0].message
    );
}

//! The naive reference and moon-queue decide alike, on small clusters of
//! several seeds: every admission with its GPUs, every preemption, every
//! waiting job's reason, message and position.

use moon_queue_bench::{naive, scenario};

#[test]
fn moon_and_the_naive_reference_make_the_same_plan() {
    for seed in [1, 2, 3, 4] {
        let (state, _) = scenario::generate(seed, 200, 500);
        let plan = moon_queue::plan(&state);
        assert_eq!(plan, naive::plan(&state), "seed {seed}");
        assert!(
            !plan.admitted.is_empty() && !plan.pending.is_empty(),
            "seed {seed}"
        );
    }
}

#[test]
fn the_scenario_preempts_and_leaves_gpu_jobs_waiting_with_reasons() {
    let (state, _) = scenario::generate(42, 500, 1_000);
    let plan = moon_queue::plan(&state);
    assert!(!plan.preempted.is_empty());
    assert!(
        plan.pending
            .iter()
            .any(|pending| pending.message.contains("nodes fit")),
        "no GPU refusal among {:?}",
        &plan.pending[..5]
    );
}

//! Admission of a queue of waiting jobs onto a synthetic cluster:
//! `moon_queue::plan` against the naive reference, alternating, in one run.
//! See `benchmarks/queue.sh` for the method.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use moon_queue::{Plan, State};
use moon_queue_bench::{naive, scenario};

#[derive(Parser)]
#[command(about = "moon-queue's admission pass against its naive reference")]
struct Args {
    /// Nodes in the synthetic cluster.
    #[arg(long, default_value_t = 5_000)]
    nodes: usize,
    /// Jobs waiting.
    #[arg(long, default_value_t = 10_000)]
    pending: usize,
    /// Rounds, alternating which side goes first.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// The generator's seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// 500 nodes, 1,000 jobs, 1 round.
    #[arg(long)]
    quick: bool,
}

fn timed(run: impl Fn(&State) -> Plan, state: &State) -> (Duration, Plan) {
    let start = Instant::now();
    let plan = run(state);
    (start.elapsed(), plan)
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() -> ExitCode {
    let mut args = Args::parse();
    if args.quick {
        (args.nodes, args.pending, args.rounds) = (500, 1_000, 1);
    }
    let (state, pods) = scenario::generate(args.seed, args.nodes, args.pending);
    println!(
        "{} nodes, {} tenants, {} running, {} waiting (seed {})",
        args.nodes,
        state.tenants.len(),
        state.running.len(),
        state.pending.len(),
        args.seed
    );
    let (mut moon_times, mut naive_times) = (Vec::new(), Vec::new());
    let mut plans = None;
    for round in 0..args.rounds {
        let (moon, reference) = if round % 2 == 0 {
            let moon = timed(moon_queue::plan, &state);
            (moon, timed(naive::plan, &state))
        } else {
            let reference = timed(naive::plan, &state);
            (timed(moon_queue::plan, &state), reference)
        };
        if moon.1 != reference.1 {
            let first = moon
                .1
                .pending
                .iter()
                .zip(&reference.1.pending)
                .find(|(a, b)| a != b);
            eprintln!("the plans differ (first waiting job that does: {first:?})");
            eprintln!(
                "admitted {} vs {}, preempted {} vs {}",
                moon.1.admitted.len(),
                reference.1.admitted.len(),
                moon.1.preempted.len(),
                reference.1.preempted.len()
            );
            return ExitCode::FAILURE;
        }
        println!(
            "round {}: moon {:.1} ms, naive {:.1} ms",
            round + 1,
            moon.0.as_secs_f64() * 1e3,
            reference.0.as_secs_f64() * 1e3
        );
        moon_times.push(moon.0);
        naive_times.push(reference.0);
        plans = Some(moon.1);
    }
    let plan = plans.expect("at least one round");
    let admitted_pods: u64 = plan.admitted.iter().map(|a| pods[&a.id]).sum();
    let (moon, reference) = (median(moon_times), median(naive_times));
    println!(
        "decisions identical: {} admitted ({} pods), {} preempted, {} waiting",
        plan.admitted.len(),
        admitted_pods,
        plan.preempted.len(),
        plan.pending.len()
    );
    println!(
        "pods admitted per second: {:.0} (kube-scheduler's scheduler_perf floor: 270)",
        admitted_pods as f64 / moon.as_secs_f64()
    );
    println!(
        "medians: moon {:.2} ms, naive {:.2} ms",
        moon.as_secs_f64() * 1e3,
        reference.as_secs_f64() * 1e3
    );
    println!(
        "ratio (naive / moon): {:.1}x",
        reference.as_secs_f64() / moon.as_secs_f64()
    );
    ExitCode::SUCCESS
}

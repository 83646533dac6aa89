#!/usr/bin/env bash
# Admission: one pass of moon-queue's `plan` over a queue of waiting jobs on a seeded synthetic
# cluster, against the naive reference in benchmarks/queue/src/naive.rs (the same rules; the next
# job found by looking at every waiting job, each pod placed by looking at every node), alternating
# which goes first, in one run.
#
# Usage: benchmarks/queue.sh [--nodes N] [--pending N] [--rounds N] [--seed S] [--quick]
#
# Defaults: 5,000 nodes (the GPU placement benchmark's five GPU models), 10,000 waiting jobs of
# 40 tenants (CPU-only jobs and GPU gangs of up to 16 pods, three priorities), about a quarter of
# the GPUs held by running jobs, 5 rounds, seed 42 (benchmarks/queue/src/scenario.rs says how).
# --quick: 500 nodes, 1,000 jobs, 1 round.
#
# The two plans (admissions with their GPUs, preemptions, each waiting job's reason, message and
# position) must be identical: exits 1 otherwise. Prints each round, the pods admitted per second
# against kube-scheduler's scheduler_perf floor of 270, and on its last line the ratio of medians,
# naive / moon (target: at least 20x).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"

case "${1:-}" in
    -h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac

cd "$ROOT"
cargo build --quiet --release -p moon-queue-bench --bin queue-bench
exec "${CARGO_TARGET_DIR:-$ROOT/target}/release/queue-bench" "$@"

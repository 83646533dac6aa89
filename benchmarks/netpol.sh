#!/usr/bin/env bash
# moon-net's network-policy evaluator: `Evaluator::new` (the index) plus `Evaluator::check` over
# every pair of a seeded synthetic cluster's pods, against `Evaluator::check_naive`, the
# rule-by-rule reference that matches every selector anew, in one run (see
# benchmarks/netpol/src/bin/netpol-bench.rs for the cluster, the policies and the method).
#
# Usage: benchmarks/netpol.sh [--pods N] [--policies N] [--namespaces N] [--seed S] [--rounds N]
#                             [--port P] [--naive-sample N] [--quick]
#
# Defaults: 1,000 pods (a 1,000,000-cell matrix), 200 policies (Kubernetes NetworkPolicies, Calico
# NetworkPolicies and GlobalNetworkPolicies in a `security` tier, built as JSON and read through
# PolicySet::push_object and compile), 20 namespaces, seed 42, 5 rounds alternating which side
# goes first, TCP port 80, the naive side over the whole matrix (--naive-sample N: a seeded sample
# of N pairs instead, its time scaled per check); --quick: 200 pods, 50 policies, 1 round.
#
# Every cell the naive side answered is compared with the indexed side's, the whole verdict;
# exits 1 on any difference. Prints each round, the medians, the share of allowed cells, and on
# its last line the ratio of medians, naive / indexed with the index build counted (target: at
# least 20x).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"

case "${1:-}" in
    -h | --help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac

cd "$ROOT"
cargo build --quiet --release -p moon-netpol-bench --bin netpol-bench
exec "${CARGO_TARGET_DIR:-$ROOT/target}/release/netpol-bench" "$@"

#!/usr/bin/env bash
# Cached<HDFS> re-reading a 256 MiB working set, against uncached HDFS reads of the same set.
#
# Usage: benchmarks/cached_hdfs.sh [--rounds 7] [--working-set-mib 256] [--file-mib 16]
#                                  [--page-kib 4096]
#
# Runs moon-storage's example `cached_hdfs_reread` (its documentation says what is measured)
# in release mode against the HDFS named by MOON_TEST_HDFS_URL. Without it, starts an HDFS of
# its own with scripts/storage/up.sh --only hdfs in target/bench-storage (namenode on
# 127.0.0.1:${MOON_TEST_HDFS_PORT:-29902}, web ${MOON_TEST_HDFS_HTTP_PORT:-29972}), and stops
# and purges it at the end, also when the run fails.
#
# The last line is the ratio of medians, uncached / cached, for whole files (target: at least
# 10x); the line before it gives the ratio for 1 MiB ranged reads.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BED="$ROOT/target/bench-storage"

stop_bed() {
    "$ROOT/scripts/storage/down.sh" --dir "$BED" --purge >/dev/null 2>&1 ||
        echo "cached_hdfs: could not stop the bed in $BED (scripts/storage/down.sh --dir $BED)" >&2
}

if [[ -z ${MOON_TEST_HDFS_URL:-} ]]; then
    echo "cached_hdfs: starting HDFS in $BED" >&2
    trap stop_bed EXIT
    MOON_TEST_HDFS_PORT="${MOON_TEST_HDFS_PORT:-29902}" \
        MOON_TEST_HDFS_HTTP_PORT="${MOON_TEST_HDFS_HTTP_PORT:-29972}" \
        "$ROOT/scripts/storage/up.sh" --only hdfs --dir "$BED" --quiet >&2
    # shellcheck source=/dev/null
    source "$BED/env.sh"
fi

cd "$ROOT"
cargo build --release --quiet -p moon-storage --example cached_hdfs_reread
"${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/cached_hdfs_reread" "$@"

#!/usr/bin/env bash
# SeaweedFS, small objects, from Python: moon's batch blob API (Store.put_blobs / get_blobs)
# against `weed benchmark` on the same servers in one run; see
# benchmarks/storage_seaweedfs_python.py for what each side does.
#
# Usage: benchmarks/storage_seaweedfs_python.sh [--quick] [--objects N] [--concurrency C]
#                                               [--size BYTES] [--rounds N] [--batch N]
#
# Needs moon installed in .venv (./scripts/test.sh --only wheel). Uses the SeaweedFS named by
# MOON_TEST_SEAWEEDFS_MASTER and MOON_TEST_SEAWEEDFS_FILER (`source DIR/env.sh` of
# scripts/storage/up.sh) or else starts a bed of its own (see benchmarks/storage_bed.sh:
# target/bench-storage, ports 24xxx) and stops it at the end.
set -euo pipefail

# shellcheck source=storage_bed.sh
source "$(dirname "${BASH_SOURCE[0]}")/storage_bed.sh"
# shellcheck disable=SC2034 # read by log() of scripts/servers.sh
LOG_TAG=storage_seaweedfs_python

case "${1:-}" in
    -h | --help) usage; exit 0 ;;
esac
bench_bed seaweedfs
[[ -x $WEED_BIN ]] || die "no weed binary in $WEED_BIN (scripts/storage/install.sh --only seaweedfs)"
export MOON_TEST_SEAWEEDFS_WEED="$WEED_BIN"
"$BENCH_ROOT/.venv/bin/python" "$BENCH_HERE/storage_seaweedfs_python.py" "$@"

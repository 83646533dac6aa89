#!/usr/bin/env bash
# SeaweedFS, small objects: moon-storage's blob API against `weed benchmark` (SeaweedFS's own Go
# client, the same `weed` binary the servers run), on the same servers in one run.
#
# Usage: benchmarks/storage_seaweedfs.sh [--quick] [--rounds N] [--objects N] [--concurrency C]
#                                        [--size BYTES] [--filer-objects N]
#
# Each round, alternating which side goes first: moon writes N objects of SIZE+0..63 bytes with
# C requests in flight (`dir/assign` with a collection, the upload straight to the volume
# server) and reads N picked at random (at the cached volume location), checking every byte;
# `weed benchmark -c=C -n=N -size=SIZE` does the same. Each side writes into a collection of its
# own, made before its clock starts and deleted after it. Then, for information only, the same
# through the filer's paths (Store::put / get) with --filer-objects objects. Defaults: 100,000
# objects, concurrency 16, 1,024 bytes, 5 rounds, 10,000 filer objects; --quick: 5,000 objects,
# 1 round, 1,000 filer objects.
#
# Prints each round, the medians with their spread, and on the last line the ratios of medians,
# moon / weed, for writes and reads (target: at least 1.0 both ways). Exits 1 when a request
# failed on either side. Each side's client CPU per object is reported, and the servers' (the
# `weed server` process's) while each side ran, when the bed runs on this machine.
#
# Uses the SeaweedFS named by MOON_TEST_SEAWEEDFS_MASTER and MOON_TEST_SEAWEEDFS_FILER (`source
# DIR/env.sh` of scripts/storage/up.sh) or else starts a bed of its own (see
# benchmarks/storage_bed.sh: target/bench-storage, ports 24xxx) and stops it at the end.
set -euo pipefail

# shellcheck source=storage_bed.sh
source "$(dirname "${BASH_SOURCE[0]}")/storage_bed.sh"
# shellcheck disable=SC2034 # read by log() of scripts/servers.sh
LOG_TAG=storage_seaweedfs

case "${1:-}" in
    -h | --help) usage; exit 0 ;;
esac
bench_bed seaweedfs
[[ -x $WEED_BIN ]] || die "no weed binary in $WEED_BIN (scripts/storage/install.sh --only seaweedfs)"
# The servers' CPU per object is reported when the bed runs here (its env.sh names its dir).
server_pid=()
pid_file="${MOON_TEST_STORAGE_DIR:-/nonexistent}/pids/seaweedfs.pid"
if [[ -s $pid_file ]]; then
    server_pid=(--server-pid "$(tr -dc 0-9 <"$pid_file")")
fi
bench_cargo_run storage-seaweedfs --weed "$WEED_BIN" --work-dir "${TMPDIR:-/tmp}" "${server_pid[@]}" "$@"

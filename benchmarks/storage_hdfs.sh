#!/usr/bin/env bash
# HDFS, one large file: a sequential write and read through moon-storage's HdfsStore against
# Hadoop's own Java client doing the same in one JVM, on the same cluster in one run.
#
# Usage: benchmarks/storage_hdfs.sh [--quick] [--rounds N] [--size-mib MIB] [--chunk-kib KIB]
#                                   [--warmup-mib MIB]
#
# Each round, alternating which side goes first: moon writes SIZE bytes with put_stream from a
# stream of CHUNK-sized pieces and reads them back with get's stream; the Java peer
# (benchmarks/storage/hdfs-java-peer: FileSystem.create / open, CHUNK bytes per write and read)
# does the same, timing itself, so the JVM's start and warm-up (an untimed file of WARMUP bytes
# on both sides) are not counted. Defaults: 1,024 MiB, 1,024 KiB chunks, a 128 MiB warm-up,
# 5 rounds; --quick: 128 MiB, a 16 MiB warm-up, 1 round.
#
# Prints each round, the medians with their spread, and on the last line the ratios of medians,
# moon / Java, for writes and reads (target: at least 1.0 both ways).
#
# The Java peer is built with Maven (the shaded hadoop-client-api/-runtime of the bed's Hadoop
# release) and cached in $MOON_CACHE_DIR/hdfs-java-peer, keyed by its sources. Uses the HDFS
# named by MOON_TEST_HDFS_URL and MOON_TEST_HDFS_CONF_DIR (`source DIR/env.sh` of
# scripts/storage/up.sh) or else starts a bed of its own (see benchmarks/storage_bed.sh:
# target/bench-storage, ports 24xxx) and stops it at the end.
set -euo pipefail

# shellcheck source=storage_bed.sh
source "$(dirname "${BASH_SOURCE[0]}")/storage_bed.sh"
# shellcheck disable=SC2034 # read by log() of scripts/servers.sh
LOG_TAG=storage_hdfs

case "${1:-}" in
    -h | --help) usage; exit 0 ;;
esac
bench_bed hdfs
command -v java >/dev/null || die "java is needed for the Java peer (scripts/storage/install.sh --only hdfs)"
bench_hdfs_peer
bench_cargo_run storage-hdfs --java-classpath "$HDFS_PEER_CLASSPATH" "$@"

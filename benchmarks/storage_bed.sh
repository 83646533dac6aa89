# The storage benchmarks' servers and builds (sourced, not run; by benchmarks/storage_*.sh).
#
# bench_bed SERVER: uses the bed named by the environment (MOON_TEST_SEAWEEDFS_MASTER, or
# MOON_TEST_HDFS_URL: what `source DIR/env.sh` of
# scripts/storage/up.sh exports) or else starts one of its own, only SERVER, in
# $MOON_BENCH_STORAGE_DIR (default target/bench-storage) on ports of its own (24xxx, clear of the
# test beds'; the MOON_TEST_*_PORT variables choose others), and stops and purges it when the
# script exits.
# bench_hdfs_peer: builds the Java peer of the HDFS benchmark (benchmarks/storage/hdfs-java-peer)
# with Maven, or finds it cached in $MOON_CACHE/hdfs-java-peer/HADOOP-KEY (KEY a hash of its
# sources), and sets HDFS_PEER_CLASSPATH.
# bench_cargo_run BIN ARGS...: runs a binary of benchmarks/storage, built in release mode.
# shellcheck shell=bash disable=SC2034
# (SC2034: the variables set here are read by the scripts that source this file and by
# scripts/servers.sh)

BENCH_HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BENCH_ROOT="$(cd "$BENCH_HERE/.." && pwd)"
# shellcheck source=../scripts/storage/lib.sh
source "$BENCH_ROOT/scripts/storage/lib.sh"
LOG_TAG_DEFAULT=bench

: "${MOON_TEST_SEAWEEDFS_MASTER_PORT:=24433}"
: "${MOON_TEST_SEAWEEDFS_MASTER_GRPC_PORT:=24434}"
: "${MOON_TEST_SEAWEEDFS_VOLUME_PORT:=24480}"
: "${MOON_TEST_SEAWEEDFS_VOLUME_GRPC_PORT:=24481}"
: "${MOON_TEST_SEAWEEDFS_FILER_PORT:=24488}"
: "${MOON_TEST_SEAWEEDFS_FILER_GRPC_PORT:=24489}"
: "${MOON_TEST_HDFS_PORT:=24902}"
: "${MOON_TEST_HDFS_HTTP_PORT:=24972}"
export MOON_TEST_SEAWEEDFS_MASTER_PORT MOON_TEST_SEAWEEDFS_MASTER_GRPC_PORT \
    MOON_TEST_SEAWEEDFS_VOLUME_PORT MOON_TEST_SEAWEEDFS_VOLUME_GRPC_PORT \
    MOON_TEST_SEAWEEDFS_FILER_PORT MOON_TEST_SEAWEEDFS_FILER_GRPC_PORT \
    MOON_TEST_HDFS_PORT MOON_TEST_HDFS_HTTP_PORT

BENCH_BED_DIR=""

bench_bed_down() {
    [[ -n $BENCH_BED_DIR ]] || return 0
    log "stopping the benchmark's bed in $BENCH_BED_DIR" >&2
    "$BENCH_ROOT/scripts/storage/down.sh" --dir "$BENCH_BED_DIR" --purge >&2 || true
    BENCH_BED_DIR=""
}

bench_bed() {
    local server=$1 given
    case "$server" in
        seaweedfs) given="${MOON_TEST_SEAWEEDFS_MASTER:-}" ;;
        hdfs) given="${MOON_TEST_HDFS_URL:-}" ;;
        *) die "no bed for '$server'" ;;
    esac
    if [[ -n $given ]]; then
        log "using the $server of the bed in the environment ($given)" >&2
        return 0
    fi
    BENCH_BED_DIR="${MOON_BENCH_STORAGE_DIR:-$BENCH_ROOT/target/bench-storage}"
    trap bench_bed_down EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    log "starting a bed of its own: $server in $BENCH_BED_DIR" >&2
    "$BENCH_ROOT/scripts/storage/up.sh" --only "$server" --dir "$BENCH_BED_DIR" --quiet >&2
    # shellcheck disable=SC1091
    source "$BENCH_BED_DIR/env.sh"
}

hdfs_peer_key() {
    (cd "$BENCH_HERE/storage/hdfs-java-peer" && find pom.xml src -type f -print0 | LC_ALL=C sort -z |
        xargs -0 sha256sum) | sha256sum | cut -c1-16
}

bench_hdfs_peer() {
    local src="$BENCH_HERE/storage/hdfs-java-peer" cache="$MOON_CACHE/hdfs-java-peer" dir build jars=() jar ok=1
    [[ -n $HADOOP_VERSION ]] || die "cannot read hadoop.version from $HDFS_LAUNCHER_SRC/pom.xml"
    dir="$cache/$HADOOP_VERSION-$(hdfs_peer_key)"
    mkdir -p "$cache"
    exec 7>"$cache/.build.lock"
    flock 7
    if [[ -f $dir/classes/moon/bench/HdfsPeer.class && -s $dir/classpath.txt ]]; then
        IFS=: read -r -a jars <"$dir/classpath.txt" || true # no final newline
        for jar in "${jars[@]}"; do [[ -f $jar ]] || ok=0; done
    else
        ok=0
    fi
    if [[ $ok == 0 ]]; then
        command -v mvn >/dev/null || die "mvn is needed to build the Java peer (scripts/storage/install.sh --only hdfs installs it)"
        build="$cache/.build.$$"
        rm -rf "$build"
        mkdir -p "$build"
        cp -R "$src/pom.xml" "$src/src" "$build/"
        log "building the Java peer with Maven (Hadoop $HADOOP_VERSION)" >&2
        # sed: Maven 3.8 prints colour resets even in batch mode.
        (cd "$build" && mvn -B -q compile dependency:build-classpath -Dhadoop.version="$HADOOP_VERSION" \
            -Dmdep.outputFile="$build/classpath.txt" 2>&1 | sed 's/\x1b\[[0-9;]*m//g' >&2) || die "mvn failed (see above)"
        [[ -s $build/classpath.txt && -d $build/target/classes ]] || die "mvn produced no classes or classpath"
        rm -rf "$dir"
        mkdir -p "$dir"
        mv "$build/target/classes" "$dir/classes"
        mv "$build/classpath.txt" "$dir/classpath.txt"
        rm -rf "$build"
        prune_keys "$cache" "" 2 >&2
    fi
    touch "$dir"
    exec 7>&-
    HDFS_PEER_CLASSPATH="$dir/classes:$(cat "$dir/classpath.txt")"
}

bench_cargo_run() {
    local bin=$1
    shift
    (cd "$BENCH_ROOT" && cargo run --quiet --release -p moon-storage-bench --bin "$bin" -- "$@")
}

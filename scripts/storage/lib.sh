# Shared by the scripts in scripts/storage/ (sourced, not run).
#
# Defines the state dir layout, the ports, the versions and cache paths of the servers; the
# process helpers come from scripts/servers.sh. Callers set DIR (the state dir) before calling
# storage_init.
# shellcheck shell=bash disable=SC2034
# (SC2034: the variables set here are used by the scripts that source this file)

STORAGE_HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STORAGE_ROOT="$(cd "$STORAGE_HERE/../.." && pwd)"

# MOON_CACHE, MAVEN_OPTS (Maven's repository under the cache): where every cache lives.
# shellcheck source=../cache.sh
source "$STORAGE_ROOT/scripts/cache.sh"
# shellcheck source=../servers.sh
source "$STORAGE_ROOT/scripts/servers.sh"
LOG_TAG_DEFAULT=storage
PORTS_IN_USE_HINT="another storage test bed? see the MOON_TEST_*_PORT variables in --help"

DEFAULT_STORAGE_DIR="${MOON_TEST_STORAGE_DIR:-$MOON_CACHE/storage-bed}"
MARKER=".moon-test-storage"

# The servers of the bed, in start order. Heketi is not among them: see docs/storage-test-bed.md.
SERVERS=(seaweedfs hdfs kerberos gluster)

SEAWEEDFS_VERSION="4.48"
WEED_BIN="$MOON_CACHE/seaweedfs/$SEAWEEDFS_VERSION/bin/weed"

HDFS_LAUNCHER_SRC="$STORAGE_ROOT/tests/storage/hdfs-launcher"
HADOOP_VERSION="$(sed -n 's:.*<hadoop.version>\(.*\)</hadoop.version>.*:\1:p' "$HDFS_LAUNCHER_SRC/pom.xml" | head -n1)"
# The launcher is cached keyed by the Hadoop version and a hash of its sources (the pom
# included), so an edit rebuilds it and a warm run never starts Maven.
hdfs_launcher_key() {
    (cd "$HDFS_LAUNCHER_SRC" && find pom.xml src -type f -print0 | LC_ALL=C sort -z |
        xargs -0 sha256sum) | sha256sum | cut -c1-16
}
HDFS_LAUNCHER_CACHE="$MOON_CACHE/hdfs-launcher"
HDFS_LAUNCHER_DIR="$HDFS_LAUNCHER_CACHE/$HADOOP_VERSION-$(hdfs_launcher_key)"
# gssapi_present: MIT's GSSAPI library, which moon's HDFS client loads at run time for
# Kerberos (Debian's libgssapi-krb5-2), is installed.
gssapi_present() { ldconfig -p 2>/dev/null | grep -q 'libgssapi_krb5\.so\.2 '; }

# hdfs_launcher_ready: the cached launcher is complete (classes, and every jar of its classpath
# still in Maven's repository).
hdfs_launcher_ready() {
    local jars=() jar
    [[ -f $HDFS_LAUNCHER_DIR/classes/moon/testbed/HdfsLauncher.class && -s $HDFS_LAUNCHER_DIR/classpath.txt ]] ||
        return 1
    IFS=: read -r -a jars <"$HDFS_LAUNCHER_DIR/classpath.txt" || true # no final newline
    [[ ${#jars[@]} -gt 0 ]] || return 1
    for jar in "${jars[@]}"; do [[ -f $jar ]] || return 1; done
}

# glusterd's management port. Not configurable: glusterd starts each brick with `-s HOST` and
# no port, so a brick only finds a glusterd on the default port.
GLUSTERD_PORT=24007
GLUSTER_VOLUME_NAME="moon-test"

# storage_init: paths under DIR, and the ports (fixed when the dir is first made, kept in
# DIR/storage.env; the MOON_TEST_*_PORT variables only matter for a new dir).
storage_init() {
    DIR="$(mkdir -p "$DIR" && cd "$DIR" && pwd)"
    CONF="$DIR/config"
    LOGS="$DIR/logs"
    PIDS="$DIR/pids"
    if [[ -f $DIR/storage.env ]]; then
        # shellcheck disable=SC1091
        source "$DIR/storage.env"
    fi
    SEAWEEDFS_MASTER_PORT="${SEAWEEDFS_MASTER_PORT:-${MOON_TEST_SEAWEEDFS_MASTER_PORT:-29333}}"
    SEAWEEDFS_MASTER_GRPC_PORT="${SEAWEEDFS_MASTER_GRPC_PORT:-${MOON_TEST_SEAWEEDFS_MASTER_GRPC_PORT:-29334}}"
    SEAWEEDFS_VOLUME_PORT="${SEAWEEDFS_VOLUME_PORT:-${MOON_TEST_SEAWEEDFS_VOLUME_PORT:-29380}}"
    SEAWEEDFS_VOLUME_GRPC_PORT="${SEAWEEDFS_VOLUME_GRPC_PORT:-${MOON_TEST_SEAWEEDFS_VOLUME_GRPC_PORT:-29381}}"
    SEAWEEDFS_FILER_PORT="${SEAWEEDFS_FILER_PORT:-${MOON_TEST_SEAWEEDFS_FILER_PORT:-29388}}"
    SEAWEEDFS_FILER_GRPC_PORT="${SEAWEEDFS_FILER_GRPC_PORT:-${MOON_TEST_SEAWEEDFS_FILER_GRPC_PORT:-29389}}"
    HDFS_PORT="${HDFS_PORT:-${MOON_TEST_HDFS_PORT:-29900}}"
    HDFS_HTTP_PORT="${HDFS_HTTP_PORT:-${MOON_TEST_HDFS_HTTP_PORT:-29970}}"
    KERBEROS_HDFS_PORT="${KERBEROS_HDFS_PORT:-${MOON_TEST_KERBEROS_HDFS_PORT:-$((HDFS_PORT + 10))}}"
    KERBEROS_HDFS_HTTP_PORT="${KERBEROS_HDFS_HTTP_PORT:-${MOON_TEST_KERBEROS_HDFS_HTTP_PORT:-$((HDFS_HTTP_PORT + 10))}}"
    GLUSTER_BRICK_PORT_MIN="${GLUSTER_BRICK_PORT_MIN:-${MOON_TEST_GLUSTER_BRICK_PORT_MIN:-29152}}"
    GLUSTER_BRICK_PORT_MAX="${GLUSTER_BRICK_PORT_MAX:-${MOON_TEST_GLUSTER_BRICK_PORT_MAX:-29159}}"

    SEAWEEDFS_DIR="$DIR/seaweedfs"
    SEAWEEDFS_MASTER_URL="http://127.0.0.1:$SEAWEEDFS_MASTER_PORT"
    SEAWEEDFS_VOLUME_URL="http://127.0.0.1:$SEAWEEDFS_VOLUME_PORT"
    SEAWEEDFS_FILER_URL="http://127.0.0.1:$SEAWEEDFS_FILER_PORT"
    HDFS_DIR="$DIR/hdfs"
    HDFS_URL="hdfs://127.0.0.1:$HDFS_PORT"
    HDFS_HTTP_URL="http://127.0.0.1:$HDFS_HTTP_PORT"
    KERBEROS_DIR="$DIR/kerberos"
    KERBEROS_HDFS_URL="hdfs://127.0.0.1:$KERBEROS_HDFS_PORT"
    KERBEROS_HDFS_HTTP_URL="http://127.0.0.1:$KERBEROS_HDFS_HTTP_PORT"
    GLUSTER_DIR="$DIR/gluster"
    GLUSTER_SOCKET="$GLUSTER_DIR/run/glusterd.socket"
    GLUSTER_BRICK="$GLUSTER_DIR/brick"
    GLUSTER_MOUNT="$GLUSTER_DIR/mnt"
    # Gluster refuses 127.0.0.1 and localhost as a brick host; the host name must resolve to an
    # address of this machine (on Debian, /etc/hosts maps it to 127.0.1.1 or 127.0.0.1).
    GLUSTER_HOST="${GLUSTER_HOST:-$(hostname)}"
}

save_storage_env() {
    cat >"$DIR/storage.env.tmp" <<EOF
# written by scripts/storage/up.sh; the ports of this storage bed dir
SEAWEEDFS_MASTER_PORT=$SEAWEEDFS_MASTER_PORT
SEAWEEDFS_MASTER_GRPC_PORT=$SEAWEEDFS_MASTER_GRPC_PORT
SEAWEEDFS_VOLUME_PORT=$SEAWEEDFS_VOLUME_PORT
SEAWEEDFS_VOLUME_GRPC_PORT=$SEAWEEDFS_VOLUME_GRPC_PORT
SEAWEEDFS_FILER_PORT=$SEAWEEDFS_FILER_PORT
SEAWEEDFS_FILER_GRPC_PORT=$SEAWEEDFS_FILER_GRPC_PORT
HDFS_PORT=$HDFS_PORT
HDFS_HTTP_PORT=$HDFS_HTTP_PORT
KERBEROS_HDFS_PORT=$KERBEROS_HDFS_PORT
KERBEROS_HDFS_HTTP_PORT=$KERBEROS_HDFS_HTTP_PORT
GLUSTER_BRICK_PORT_MIN=$GLUSTER_BRICK_PORT_MIN
GLUSTER_BRICK_PORT_MAX=$GLUSTER_BRICK_PORT_MAX
GLUSTER_HOST=$GLUSTER_HOST
EOF
    mv "$DIR/storage.env.tmp" "$DIR/storage.env"
}

# parse_only LIST: the servers named in a comma-separated LIST, checked, into ONLY_SERVERS.
parse_only() {
    local names=() n s ok
    IFS=',' read -r -a names <<<"$1"
    for n in "${names[@]}"; do
        [[ -n $n ]] || continue
        if [[ $n == heketi ]]; then
            die "heketi is not part of the storage test bed: the Go module proxy serves no github.com/heketi/heketi/v10 version (see docs/storage-test-bed.md)"
        fi
        ok=0
        for s in "${SERVERS[@]}"; do [[ $s == "$n" ]] && ok=1; done
        [[ $ok == 1 ]] || die "unknown server '$n' (servers: ${SERVERS[*]})"
        ONLY_SERVERS+=("$n")
    done
    [[ ${#ONLY_SERVERS[@]} -gt 0 ]] || die "--only needs at least one server (${SERVERS[*]})"
}

# gluster_cli ARGS...: the gluster CLI of this bed's glusterd (its own socket and log).
gluster_cli() {
    gluster --mode=script --glusterd-sock="$GLUSTER_SOCKET" --log-file="$LOGS/gluster-cli.log" "$@"
}

# wait_exit NAME TIMEOUT_S: wait for the recorded process NAME to end by itself.
wait_exit() {
    local name=$1 timeout=$2 deadline
    deadline=$(($(now_ms) + timeout * 1000))
    while alive "$name"; do
        (($(now_ms) < deadline)) || return 1
        sleep 0.2
    done
}

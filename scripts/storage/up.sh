#!/usr/bin/env bash
# Bring up the storage test bed: real storage servers on loopback.
#
# Usage: scripts/storage/up.sh [--dir DIR] [--only SERVER[,SERVER...]] [--quiet]
#
# Runs, each bound to 127.0.0.1, PIDs in DIR/pids, logs in DIR/logs:
#   seaweedfs  `weed server` 4.48: master http://127.0.0.1:29333 (gRPC 29334), volume server
#              :29380 (gRPC 29381), filer :29388 (gRPC 29389); data in DIR/seaweedfs
#   hdfs       a MiniDFSCluster (tests/storage/hdfs-launcher): namenode hdfs://127.0.0.1:29900,
#              web UI/JMX http://127.0.0.1:29970, one datanode on ephemeral loopback ports;
#              data (empty at every start) and core-site.xml in DIR/hdfs; it stops when its
#              standard input (a fifo held open by the process hdfs-stdin) closes
#   kerberos   a second MiniDFSCluster, secure: a KDC (MiniKdc, realm EXAMPLE.COM, 127.0.0.1 and
#              an ephemeral TCP port) with the principals hdfs/localhost (the superuser), alice
#              and bob, their keytabs and a krb5.conf for MIT clients in DIR/kerberos/realm;
#              Kerberos on the namenode hdfs://127.0.0.1:29910 (web :29980), SASL with block
#              tokens on the datanode; stopped like hdfs
#   gluster    glusterd (management 127.0.0.1:24007, fixed: see docs/storage-test-bed.md; CLI
#              socket, working dir and volfile in DIR/gluster), volume `moon-test` with one
#              brick HOSTNAME:DIR/gluster/brick (brick port in 29152-29159), FUSE-mounted on
#              DIR/gluster/mnt and checked by writing and reading a file through the mount
# Heketi is not part of the bed (its Go module is not served here; see the docs).
#
# Writes DIR/env.sh with the exports of the servers that are up:
#   MOON_TEST_STORAGE_DIR, MOON_TEST_SEAWEEDFS_{MASTER,VOLUME,FILER} (URLs),
#   MOON_TEST_SEAWEEDFS_FILER_GRPC_PORT, MOON_TEST_SEAWEEDFS_WEED (the weed program),
#   MOON_TEST_HDFS_URL, MOON_TEST_HDFS_HTTP, MOON_TEST_HDFS_CONF_DIR (its core-site.xml),
#   MOON_TEST_HDFS_KERBEROS_URL, MOON_TEST_KERBEROS_DIR (krb5.conf, NAME.keytab),
#   MOON_TEST_GLUSTER_{HOST,VOLUME,MOUNT,SOCKET}
# and prints `source DIR/env.sh` last.
#
# Idempotent: servers that are up are only checked; those that died are started again with
# the same ports and data. Installs what is missing first (scripts/storage/install.sh).
#
# Options:
#   --dir DIR    state dir (default: $MOON_TEST_STORAGE_DIR or ~/.cache/moon/storage-bed)
#   --only LIST  start only these servers (comma-separated: seaweedfs, hdfs, kerberos, gluster;
#                default all)
#   --quiet      print only the last line
#   -h, --help   show this help
#
# Environment:
#   MOON_TEST_STORAGE_DIR   default state dir
#   MOON_CACHE_DIR          cache root of the binaries (default: ~/.cache/moon)
#   MOON_TEST_SEAWEEDFS_MASTER_PORT, MOON_TEST_SEAWEEDFS_MASTER_GRPC_PORT,
#   MOON_TEST_SEAWEEDFS_VOLUME_PORT, MOON_TEST_SEAWEEDFS_VOLUME_GRPC_PORT,
#   MOON_TEST_SEAWEEDFS_FILER_PORT, MOON_TEST_SEAWEEDFS_FILER_GRPC_PORT,
#   MOON_TEST_HDFS_PORT, MOON_TEST_HDFS_HTTP_PORT,
#   MOON_TEST_KERBEROS_HDFS_PORT, MOON_TEST_KERBEROS_HDFS_HTTP_PORT (default: HDFS's + 10),
#   MOON_TEST_GLUSTER_BRICK_PORT_MIN, MOON_TEST_GLUSTER_BRICK_PORT_MAX
#                           ports, read when a state dir is first made (then kept in
#                           DIR/storage.env)
#   MOON_TEST_STORAGE_KEEP_ON_FAILURE=1   leave what was started running when up fails
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_TAG=up

DIR="$DEFAULT_STORAGE_DIR"
QUIET=0
ONLY_SERVERS=()
while [[ $# -gt 0 ]]; do
    common_option "$@"
    if [[ $TAKEN -gt 0 ]]; then
        shift "$TAKEN"
        continue
    fi
    case "$1" in
        --quiet) QUIET=1 ;;
        --only)
            [[ $# -ge 2 ]] || die "--only needs a list of servers"
            parse_only "$2"
            shift
            ;;
        --only=*) parse_only "${1#--only=}" ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
    shift
done
[[ ${#ONLY_SERVERS[@]} -gt 0 ]] || ONLY_SERVERS=("${SERVERS[@]}")
wanted() { [[ " ${ONLY_SERVERS[*]} " == *" $1 "* ]]; }

T0=$(now_ms)
if [[ -d $DIR && ! -e $DIR/$MARKER ]]; then
    shopt -s nullglob dotglob
    entries=("$DIR"/*)
    shopt -u nullglob dotglob
    [[ ${#entries[@]} -eq 0 ]] ||
        die "$DIR is not empty and is not a storage test bed dir (no $MARKER); pick another --dir"
fi
storage_init
touch "$DIR/$MARKER"

# One up.sh at a time per dir (parallel test workers may all call it).
exec 9>"$DIR/.lock"
flock -w 600 9 || die "another up.sh holds $DIR/.lock"

mkdir -p "$CONF" "$LOGS" "$PIDS"
save_storage_env

# --------------------------------------------------------------------------- failure handling
STARTED=()
on_exit() {
    local rc=$?
    trap - EXIT
    if [[ $rc -ne 0 ]]; then
        echo "up.sh failed (exit $rc); logs in $LOGS" >&2
        local c
        for c in "${STARTED[@]+"${STARTED[@]}"}"; do
            if [[ -f $LOGS/$c.log ]]; then
                echo "---- last lines of $LOGS/$c.log" >&2
                tail -n 15 "$LOGS/$c.log" >&2
            fi
        done
        if [[ ${MOON_TEST_STORAGE_KEEP_ON_FAILURE:-0} != 1 && ${#STARTED[@]} -gt 0 ]]; then
            echo "stopping what this run started: ${STARTED[*]}" >&2
            local i
            for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do
                case "${STARTED[$i]}" in
                    gluster) STORAGE_LOCK_HELD_BY_CALLER=1 "$STORAGE_HERE/down.sh" --dir "$DIR" --only gluster >&2 || true ;;
                    *) stop_component "${STARTED[$i]}" 10 >&2 || true ;;
                esac
            done
        fi
    fi
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_for WHAT TIMEOUT_S NAME CMD...: poll CMD until it succeeds; fail when the process NAME
# died or TIMEOUT_S passed.
wait_for() {
    local what=$1 timeout=$2 name=$3 deadline
    shift 3
    deadline=$(($(now_ms) + timeout * 1000))
    until "$@" >/dev/null 2>&1; do
        alive "$name" || die "$name exited while waiting for $what (see $LOGS/$name.log)"
        (($(now_ms) < deadline)) || die "$what not ready after ${timeout}s (see $LOGS/$name.log)"
        sleep 0.2
    done
}

# --------------------------------------------------------------------------- prerequisites
install_args=()
for s in "${ONLY_SERVERS[@]}"; do
    case "$s" in
        seaweedfs) [[ -x $WEED_BIN ]] || install_args+=(seaweedfs) ;;
        hdfs) { command -v java >/dev/null && hdfs_launcher_ready; } || install_args+=(hdfs) ;;
        kerberos) { command -v java >/dev/null && hdfs_launcher_ready && gssapi_present; } || install_args+=(kerberos) ;;
        gluster) { command -v glusterd >/dev/null && command -v mount.glusterfs >/dev/null; } || install_args+=(gluster) ;;
    esac
done
command -v curl >/dev/null || install_args+=("${ONLY_SERVERS[0]}")
if [[ ${#install_args[@]} -gt 0 ]]; then
    log "missing for ${install_args[*]}: running scripts/storage/install.sh"
    "$STORAGE_HERE/install.sh" --only "$(IFS=, && echo "${install_args[*]}")"
fi

declare -A UP_TIME=()

# --------------------------------------------------------------------------- SeaweedFS
seaweedfs_ready() {
    curl -sf --max-time 3 "$SEAWEEDFS_MASTER_URL/cluster/status" >/dev/null &&
        curl -sf --max-time 3 -H 'Accept: application/json' "$SEAWEEDFS_FILER_URL/" >/dev/null &&
        curl -sf --max-time 3 "$SEAWEEDFS_MASTER_URL/dir/assign" | grep -q '"fid"'
}

up_seaweedfs() {
    local t0
    t0=$(now_ms)
    if alive seaweedfs && seaweedfs_ready; then
        log "seaweedfs is already up"
    else
        alive seaweedfs && stop_component seaweedfs 30
        require_free_ports seaweedfs "$SEAWEEDFS_MASTER_PORT" "$SEAWEEDFS_MASTER_GRPC_PORT" \
            "$SEAWEEDFS_VOLUME_PORT" "$SEAWEEDFS_VOLUME_GRPC_PORT" "$SEAWEEDFS_FILER_PORT" "$SEAWEEDFS_FILER_GRPC_PORT"
        mkdir -p "$SEAWEEDFS_DIR/data"
        STARTED+=(seaweedfs)
        # Small volumes (64 MB) so that a test bed never reserves gigabytes (they grow only as
        # data is written); room for 128, as every collection gets 7 volumes when it is first
        # written (the tests make one per tenant); telemetry off; no 10 s pause between the
        # volume server's last heartbeat and its stop (nobody to drain).
        start_component seaweedfs -- "$WEED_BIN" server \
            -dir="$SEAWEEDFS_DIR/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
            -master.port="$SEAWEEDFS_MASTER_PORT" -master.port.grpc="$SEAWEEDFS_MASTER_GRPC_PORT" \
            -master.telemetry=false -master.volumeSizeLimitMB=64 \
            -volume.port="$SEAWEEDFS_VOLUME_PORT" -volume.port.grpc="$SEAWEEDFS_VOLUME_GRPC_PORT" \
            -volume.max=128 -volume.preStopSeconds=0 \
            -filer -filer.port="$SEAWEEDFS_FILER_PORT" -filer.port.grpc="$SEAWEEDFS_FILER_GRPC_PORT" \
            -filer.localSocket="$SEAWEEDFS_DIR/filer.sock"
        wait_for "seaweedfs (master, filer, a volume to assign)" 60 seaweedfs seaweedfs_ready
    fi
    UP_TIME[seaweedfs]=$(($(now_ms) - t0))
}

# --------------------------------------------------------------------------- HDFS
# hdfs_live_datanodes HTTP_URL: how many datanodes the namenode of HTTP_URL counts as live.
hdfs_live_datanodes() {
    curl -sf --max-time 3 "$1/jmx?qry=Hadoop:service=NameNode,name=FSNamesystemState" |
        sed -n 's/.*"NumLiveDataNodes" *: *\([0-9]*\).*/\1/p'
}
# hdfs_ready HTTP_URL RPC_PORT
hdfs_ready() { [[ $(hdfs_live_datanodes "$1") -ge 1 ]] && port_in_use "$2"; }

# start_hdfs NAME DIR PORT HTTP_PORT [LAUNCHER_FLAG...]: the launcher as component NAME, its
# standard input a fifo held by the component NAME-stdin (down.sh closes it to stop NAME).
start_hdfs() {
    local name=$1 dir=$2 port=$3 http_port=$4 fifo mark classpath
    shift 4
    fifo="$dir/stdin"
    if alive "$name" && alive "$name-stdin" && hdfs_ready "http://127.0.0.1:$http_port" "$port"; then
        log "$name is already up"
        return 0
    fi
    stop_component "$name-stdin" 5
    alive "$name" && stop_component "$name" 30
    require_free_ports "$name" "$port" "$http_port"
    mkdir -p "$dir"
    rm -f "$fifo"
    mkfifo -m 0600 "$fifo"
    STARTED+=("$name-stdin" "$name")
    # The launcher serves until its standard input ends: this process holds the fifo's
    # writing end, and down.sh stops it first.
    start_component "$name-stdin" -- python3 -c \
        'import signal, sys; f = open(sys.argv[1], "w"); signal.pause()' "$fifo"
    classpath="$HDFS_LAUNCHER_DIR/classes:$(cat "$HDFS_LAUNCHER_DIR/classpath.txt")"
    mark=0
    [[ -f $LOGS/$name.log ]] && mark=$(wc -l <"$LOGS/$name.log")
    COMPONENT_STDIN="$fifo" start_component "$name" -- java -Xmx768m -cp "$classpath" \
        moon.testbed.HdfsLauncher --dir "$dir" --port "$port" --http-port "$http_port" "$@"
    # shellcheck disable=SC2016
    wait_for "$name (READY line)" 180 "$name" \
        bash -c 'tail -n +"$(($2 + 1))" "$1" | grep -q "^READY hdfs://"' _ "$LOGS/$name.log" "$mark"
    wait_for "$name (a live datanode)" 60 "$name" hdfs_ready "http://127.0.0.1:$http_port" "$port"
}

up_hdfs() {
    local t0
    t0=$(now_ms)
    start_hdfs hdfs "$HDFS_DIR" "$HDFS_PORT" "$HDFS_HTTP_PORT"
    UP_TIME[hdfs]=$(($(now_ms) - t0))
}

# The secure cluster: its KDC, principals and keytabs are made anew at every start.
up_kerberos() {
    local t0
    t0=$(now_ms)
    start_hdfs kerberos "$KERBEROS_DIR" "$KERBEROS_HDFS_PORT" "$KERBEROS_HDFS_HTTP_PORT" --kerberos
    UP_TIME[kerberos]=$(($(now_ms) - t0))
}

# --------------------------------------------------------------------------- GlusterFS
write_glusterd_vol() {
    mkdir -p "$GLUSTER_DIR/lib" "$GLUSTER_DIR/run"
    cat >"$GLUSTER_DIR/glusterd.vol.tmp" <<EOF
# written by scripts/storage/up.sh: glusterd of the storage test bed, on loopback, with its
# working dir, CLI socket and run dir in this state dir
volume management
    type mgmt/glusterd
    option working-directory $GLUSTER_DIR/lib
    option run-directory $GLUSTER_DIR/run
    option glusterd-sockfile $GLUSTER_SOCKET
    option transport-type socket
    option transport.socket.bind-address 127.0.0.1
    option transport.socket.listen-port $GLUSTERD_PORT
    option transport.socket.keepalive-time 10
    option transport.socket.keepalive-interval 2
    option transport.socket.read-fail-log off
    option ping-timeout 0
    option event-threads 1
    option base-port $GLUSTER_BRICK_PORT_MIN
    option max-port $GLUSTER_BRICK_PORT_MAX
end-volume
EOF
    mv "$GLUSTER_DIR/glusterd.vol.tmp" "$GLUSTER_DIR/glusterd.vol"
}

gluster_volume_started() {
    gluster_cli volume info "$GLUSTER_VOLUME_NAME" 2>/dev/null | grep -q '^Status: Started'
}

# The brick process is glusterd's child (daemonized): record it so that down.sh can check
# that it ended, and so that its system files can be cleaned.
record_gluster_brick() {
    local pidfile pid
    pidfile="$(find "$GLUSTER_DIR/run/vols/$GLUSTER_VOLUME_NAME" -name '*.pid' 2>/dev/null | head -n1)"
    [[ -n $pidfile && -s $pidfile ]] || return 1
    pid="$(tr -dc '0-9' <"$pidfile")"
    pid_alive "$pid" || return 1
    echo "$pid" >"$PIDS/gluster-brick.pid"
    # Its unix socket in /var/run/gluster (not movable: see docs/storage-test-bed.md).
    tr '\0' '\n' <"/proc/$pid/cmdline" | sed -n '/^-S$/{n;p;}' >"$GLUSTER_DIR/brick-socket"
}

gluster_mount_check() {
    local probe="$GLUSTER_MOUNT/.moon-up-check" want
    want="up.sh $(date +%s%N)"
    printf '%s\n' "$want" >"$probe" && [[ $(cat "$probe") == "$want" ]] && rm -f "$probe" &&
        [[ -z $(find "$GLUSTER_BRICK" -maxdepth 1 -name .moon-up-check) ]]
}

up_gluster() {
    local t0
    t0=$(now_ms)
    if ! alive glusterd; then
        require_free_ports glusterd "$GLUSTERD_PORT"
        write_glusterd_vol
        STARTED+=(gluster)
        start_component glusterd -- glusterd -N --volfile="$GLUSTER_DIR/glusterd.vol" \
            --log-file="$LOGS/glusterd.log"
        wait_for "glusterd (CLI socket)" 30 glusterd gluster_cli volume list
    elif [[ " ${STARTED[*]} " != *" gluster "* ]]; then
        log "glusterd is already up"
    fi
    if ! gluster_cli volume info "$GLUSTER_VOLUME_NAME" >/dev/null 2>&1; then
        mkdir -p "$GLUSTER_BRICK"
        # `force`: the brick is on the root file system, which gluster otherwise refuses.
        gluster_cli volume create "$GLUSTER_VOLUME_NAME" "$GLUSTER_HOST:$GLUSTER_BRICK" force >/dev/null
        log "created gluster volume $GLUSTER_VOLUME_NAME ($GLUSTER_HOST:$GLUSTER_BRICK)"
    fi
    if ! gluster_volume_started; then
        gluster_cli volume start "$GLUSTER_VOLUME_NAME" force >/dev/null
        log "started gluster volume $GLUSTER_VOLUME_NAME"
    fi
    wait_for "the gluster brick" 30 glusterd record_gluster_brick
    mkdir -p "$GLUSTER_MOUNT"
    if ! mountpoint -q "$GLUSTER_MOUNT"; then
        # 9>&-: the FUSE client stays running and must not hold up.sh's lock on DIR/.lock.
        mount -t glusterfs -o "log-file=$LOGS/gluster-mount.log" \
            "$GLUSTER_HOST:/$GLUSTER_VOLUME_NAME" "$GLUSTER_MOUNT" 9>&-
        log "mounted $GLUSTER_HOST:/$GLUSTER_VOLUME_NAME on $GLUSTER_MOUNT"
    fi
    gluster_mount_check || die "a file written through $GLUSTER_MOUNT does not read back"
    UP_TIME[gluster]=$(($(now_ms) - t0))
}

# --------------------------------------------------------------------------- main
for s in "${SERVERS[@]}"; do
    wanted "$s" && "up_$s"
done

# env.sh: every server of this dir that is up, whether this run or an earlier one started it.
{
    echo "# written by scripts/storage/up.sh: the storage test bed in $DIR"
    echo "export MOON_TEST_STORAGE_DIR=$DIR"
    if alive seaweedfs; then
        echo "export MOON_TEST_SEAWEEDFS_MASTER=$SEAWEEDFS_MASTER_URL"
        echo "export MOON_TEST_SEAWEEDFS_VOLUME=$SEAWEEDFS_VOLUME_URL"
        echo "export MOON_TEST_SEAWEEDFS_FILER=$SEAWEEDFS_FILER_URL"
        echo "export MOON_TEST_SEAWEEDFS_FILER_GRPC_PORT=$SEAWEEDFS_FILER_GRPC_PORT"
        echo "export MOON_TEST_SEAWEEDFS_WEED=$WEED_BIN"
    fi
    if alive hdfs; then
        echo "export MOON_TEST_HDFS_URL=$HDFS_URL"
        echo "export MOON_TEST_HDFS_HTTP=$HDFS_HTTP_URL"
        echo "export MOON_TEST_HDFS_CONF_DIR=$HDFS_DIR"
    fi
    if alive kerberos; then
        echo "export MOON_TEST_HDFS_KERBEROS_URL=$KERBEROS_HDFS_URL"
        echo "export MOON_TEST_KERBEROS_DIR=$KERBEROS_DIR/realm"
    fi
    if alive glusterd && mountpoint -q "$GLUSTER_MOUNT"; then
        echo "export MOON_TEST_GLUSTER_HOST=$GLUSTER_HOST"
        echo "export MOON_TEST_GLUSTER_VOLUME=$GLUSTER_VOLUME_NAME"
        echo "export MOON_TEST_GLUSTER_MOUNT=$GLUSTER_MOUNT"
        echo "export MOON_TEST_GLUSTER_SOCKET=$GLUSTER_SOCKET"
    fi
} >"$DIR/env.sh.tmp"
mv "$DIR/env.sh.tmp" "$DIR/env.sh"
trap - EXIT

if [[ $QUIET == 0 ]]; then
    echo
    echo "storage test bed in $DIR (up in $(fmt_ms $(($(now_ms) - T0))))"
    for s in "${SERVERS[@]}"; do
        [[ -n ${UP_TIME[$s]:-} ]] || continue
        case "$s" in
            seaweedfs) printf '  %-10s %-8s master %s  filer %s  volume %s\n' "$s" "$(fmt_ms "${UP_TIME[$s]}")" \
                "$SEAWEEDFS_MASTER_URL" "$SEAWEEDFS_FILER_URL" "$SEAWEEDFS_VOLUME_URL" ;;
            hdfs) printf '  %-10s %-8s %s  web %s  (Hadoop %s)\n' "$s" "$(fmt_ms "${UP_TIME[$s]}")" \
                "$HDFS_URL" "$HDFS_HTTP_URL" "$HADOOP_VERSION" ;;
            kerberos) printf '  %-10s %-8s %s  web %s  (realm and keytabs in %s)\n' "$s" "$(fmt_ms "${UP_TIME[$s]}")" \
                "$KERBEROS_HDFS_URL" "$KERBEROS_HDFS_HTTP_URL" "$KERBEROS_DIR/realm" ;;
            gluster) printf '  %-10s %-8s %s:/%s on %s\n' "$s" "$(fmt_ms "${UP_TIME[$s]}")" \
                "$GLUSTER_HOST" "$GLUSTER_VOLUME_NAME" "$GLUSTER_MOUNT" ;;
        esac
    done
    echo "  logs       $LOGS"
    echo "  stop       scripts/storage/down.sh --dir $DIR [--purge]"
    echo
fi
echo "source $DIR/env.sh"

#!/usr/bin/env bash
# Stop the storage test bed that scripts/storage/up.sh started.
#
# Usage: scripts/storage/down.sh [--dir DIR] [--only SERVER[,SERVER...]] [--purge] [--timeout SECONDS]
#
# Stops, by the PIDs recorded in DIR/pids (a PID is only signalled while its command line
# still names DIR, so a reused PID is never hit; SIGTERM, then SIGKILL after the timeout):
#   gluster    unmounts every glusterfs mount in DIR (DIR/gluster/mnt, and those tests left in
#              DIR/gluster/mounts), stops and deletes every volume of the bed's glusterd (and the
#              brick dirs: gluster refuses to reuse a brick), stops glusterd, stops any brick or
#              quotad it left, and removes the bricks' logs and sockets and the quota helpers'
#              files that glusterd put under /var/log/glusterfs and /var/run/gluster
#   hdfs       closes the launcher's standard input (stops hdfs-stdin), waits for the launcher
#              to shut the cluster down, SIGTERM after 30 s (its data starts empty at the next up)
#   kerberos   the same for the secure cluster (kerberos-stdin, kerberos) and its KDC
#   seaweedfs  weed server (it can take over 10 s to stop); its data is kept
# Without --purge the state dir is kept (ports, logs, SeaweedFS data), and the next up.sh
# starts the same servers again (HDFS formatted anew). Stopping a bed that is not running is a
# no-op.
#
# Options:
#   --dir DIR          state dir (default: $MOON_TEST_STORAGE_DIR or ~/.cache/moon/storage-bed)
#   --only LIST        stop only these servers (comma-separated: seaweedfs, hdfs, kerberos, gluster)
#   --purge            remove the state dir afterwards (only when every server was stopped)
#   --timeout SECONDS  grace period of each process before SIGKILL (default: 30)
#   -h, --help         show this help
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_TAG=down

DIR="$DEFAULT_STORAGE_DIR"
PURGE=0
TIMEOUT=30
ONLY_SERVERS=()
while [[ $# -gt 0 ]]; do
    common_option "$@"
    if [[ $TAKEN -gt 0 ]]; then
        shift "$TAKEN"
        continue
    fi
    case "$1" in
        --purge) PURGE=1 ;;
        --only)
            [[ $# -ge 2 ]] || die "--only needs a list of servers"
            parse_only "$2"
            shift
            ;;
        --only=*) parse_only "${1#--only=}" ;;
        --timeout)
            [[ $# -ge 2 && $2 =~ ^[0-9]+$ ]] || die "--timeout needs a number of seconds"
            TIMEOUT=$2
            shift
            ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
    shift
done
ALL=1
[[ ${#ONLY_SERVERS[@]} -gt 0 ]] && ALL=0
[[ $ALL == 1 ]] && ONLY_SERVERS=("${SERVERS[@]}")
wanted() { [[ " ${ONLY_SERVERS[*]} " == *" $1 "* ]]; }

T0=$(now_ms)
if [[ ! -d $DIR ]]; then
    log "no storage bed dir at $DIR: nothing to stop"
    exit 0
fi
[[ -e $DIR/$MARKER ]] || die "$DIR is not a storage test bed dir (no $MARKER)"
storage_init

# Wait for an up.sh in progress on this dir (it holds DIR/.lock), but stop regardless. up.sh
# calls down.sh --only gluster itself when it fails, holding the lock: it passes the lock on.
exec 9>>"$DIR/.lock"
if ! flock -n 9; then
    [[ ${STORAGE_LOCK_HELD_BY_CALLER:-0} == 1 ]] || flock -w 120 9 || warn "$DIR/.lock still held after 120s; stopping anyway"
fi

# The glusterfs mounts in the bed's dir: the bed's own, and any that a test killed before its
# cleanup left in gluster/mounts.
gluster_mounts() {
    awk -v dir="$DIR/" '/ - fuse\.glusterfs / && index($5, dir) == 1 { print $5 }' /proc/self/mountinfo
}

# The unix sockets of the bed's running bricks (glusterd puts them in /var/run/gluster).
gluster_brick_sockets() {
    local pidfile pid
    for pidfile in "$GLUSTER_DIR"/run/vols/*/*.pid; do
        [[ -s $pidfile ]] || continue
        pid="$(cat "$pidfile")"
        [[ -r /proc/$pid/cmdline ]] || continue
        tr '\0' '\n' <"/proc/$pid/cmdline" | sed -n '/^-S$/{n;p;}'
    done
}

# forget_gluster_volume NAME: what glusterd leaves outside the state dir for a volume it deleted
# (the quota helpers' logs and pid files, empty per-volume log dirs).
forget_gluster_volume() {
    local name=$1
    rm -f "/var/log/glusterfs/quota-mount-$name.log" \
        "/var/run/gluster/${name}_quota_limit.pid" "/var/run/gluster/${name}_quota_list.pid"
    rmdir "/var/log/glusterfs/gfproxy/$name" "/var/log/glusterfs/snaps/$name" 2>/dev/null || true
}

down_gluster() {
    local mnt vol sock pidfile n=0 sockets=() volumes=()
    for mnt in $(gluster_mounts); do
        umount "$mnt" || umount -l "$mnt"
        log "unmounted $mnt"
    done
    if [[ -s $GLUSTER_DIR/brick-socket ]]; then sockets+=("$(cat "$GLUSTER_DIR/brick-socket")"); fi
    mapfile -t -O "${#sockets[@]}" sockets < <(gluster_brick_sockets)
    if alive glusterd; then
        # Every volume of the bed's glusterd: its own, and any that a killed test left.
        mapfile -t volumes < <(gluster_cli volume list 2>/dev/null | grep -v '^No volumes present' || true)
        for vol in "${volumes[@]}"; do
            gluster_cli volume stop "$vol" force >/dev/null 2>&1 || true
            gluster_cli volume delete "$vol" >/dev/null || warn "could not delete gluster volume $vol"
            forget_gluster_volume "$vol"
            log "stopped and deleted gluster volume $vol"
        done
        stop_component glusterd "$TIMEOUT"
    else
        rm -f "$PIDS/glusterd.pid"
    fi
    # Bricks end with `volume stop`; one left over (glusterd died first) is stopped here, and so
    # are the other daemons glusterd started (test volumes' bricks, quotad), by their pid files.
    stop_component gluster-brick "$TIMEOUT"
    for pidfile in "$GLUSTER_DIR"/run/vols/*/*.pid "$GLUSTER_DIR/run/quotad/quotad.pid"; do
        [[ -s $pidfile ]] || continue
        n=$((n + 1))
        cp "$pidfile" "$PIDS/gluster-daemon-$n.pid"
        stop_component "gluster-daemon-$n" "$TIMEOUT"
    done
    rm -rf "$GLUSTER_BRICK" "$GLUSTER_DIR/provisioned" "$GLUSTER_DIR/lib/vols"
    # What glusterd put outside the state dir for the bricks (the names hold their paths) and
    # for quotad (started by the first volume with a quota).
    local dashed
    dashed="$(printf '%s' "${GLUSTER_DIR#/}" | tr '/' '-')"
    rm -f /var/log/glusterfs/bricks/"$dashed"-*.log /var/log/glusterfs/quota_crawl/"$dashed"-*.log
    for sock in "${sockets[@]}"; do
        [[ $sock == /var/run/gluster/*.socket || $sock == /run/gluster/*.socket ]] && rm -f "$sock"
    done
    rm -f "$GLUSTER_DIR/brick-socket"
    if [[ -d $GLUSTER_DIR/run/quotad ]]; then
        rm -f /var/run/gluster/quotad.socket /var/log/glusterfs/quotad.log
        rmdir /var/run/gluster/tmp /var/log/glusterfs/quota_crawl 2>/dev/null || true
        rm -rf "$GLUSTER_DIR/run/quotad"
    fi
}

# stop_hdfs NAME DIR: close the launcher's standard input, wait for it, then stop it.
stop_hdfs() {
    local name=$1 dir=$2
    stop_component "$name-stdin" "$TIMEOUT"
    if alive "$name"; then
        if wait_exit "$name" "$TIMEOUT"; then
            log "$name shut down (its standard input closed)"
        else
            log "$name still running ${TIMEOUT}s after its standard input closed"
        fi
    fi
    stop_component "$name" "$TIMEOUT"
    rm -f "$dir/stdin"
}

down_hdfs() { stop_hdfs hdfs "$HDFS_DIR"; }
down_kerberos() { stop_hdfs kerberos "$KERBEROS_DIR"; }

down_seaweedfs() { stop_component seaweedfs "$TIMEOUT"; }

for ((i = ${#SERVERS[@]} - 1; i >= 0; i--)); do
    s=${SERVERS[$i]}
    wanted "$s" && "down_$s"
done
if [[ $ALL == 1 ]]; then
    rm -f "$DIR/env.sh"
else
    # env.sh of what is still up
    for s in "${ONLY_SERVERS[@]}"; do
        case "$s" in
            seaweedfs) sed -i '/MOON_TEST_SEAWEEDFS_/d' "$DIR/env.sh" 2>/dev/null || true ;;
            hdfs) sed -i '/MOON_TEST_HDFS_\(URL\|HTTP\|CONF_DIR\)=/d' "$DIR/env.sh" 2>/dev/null || true ;;
            kerberos) sed -i '/MOON_TEST_\(HDFS_KERBEROS_URL\|KERBEROS_DIR\)=/d' "$DIR/env.sh" 2>/dev/null || true ;;
            gluster) sed -i '/MOON_TEST_GLUSTER_/d' "$DIR/env.sh" 2>/dev/null || true ;;
        esac
    done
fi

if [[ $PURGE == 1 ]]; then
    [[ $ALL == 1 ]] || die "--purge needs every server stopped (no --only)"
    [[ -z $(gluster_mounts) ]] || die "$(gluster_mounts | head -n1) is still mounted: not removing $DIR"
    rm -rf -- "$DIR"
    log "removed $DIR"
fi
log "down in $(fmt_ms $(($(now_ms) - T0)))"

#!/usr/bin/env bash
# Stop the storage test bed that scripts/storage/up.sh started.
#
# Usage: scripts/storage/down.sh [--dir DIR] [--only SERVER[,SERVER...]] [--purge] [--timeout SECONDS]
#
# Stops, by the PIDs recorded in DIR/pids (a PID is only signalled while its command line
# still names DIR, so a reused PID is never hit; SIGTERM, then SIGKILL after the timeout):
#   gluster    unmounts DIR/gluster/mnt, stops and deletes the volume (and its brick dir: gluster
#              refuses to reuse a brick), stops glusterd, checks that the brick process ended,
#              and removes the brick's log and socket that glusterd put under /var/log/glusterfs
#              and /var/run/gluster
#   hdfs       closes the launcher's standard input (stops hdfs-stdin), waits for the launcher
#              to shut the cluster down, SIGTERM after 30 s (its data starts empty at the next up)
#   seaweedfs  weed server (it can take over 10 s to stop); its data is kept
# Without --purge the state dir is kept (ports, logs, SeaweedFS data), and the next up.sh
# starts the same servers again (HDFS formatted anew). Stopping a bed that is not running is a
# no-op.
#
# Options:
#   --dir DIR          state dir (default: $MOON_TEST_STORAGE_DIR or ~/.cache/moon/storage-bed)
#   --only LIST        stop only these servers (comma-separated: seaweedfs, hdfs, gluster)
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

down_gluster() {
    if mountpoint -q "$GLUSTER_MOUNT" 2>/dev/null; then
        umount "$GLUSTER_MOUNT" || umount -l "$GLUSTER_MOUNT"
        log "unmounted $GLUSTER_MOUNT"
    fi
    if alive glusterd; then
        if gluster_cli volume info "$GLUSTER_VOLUME_NAME" >/dev/null 2>&1; then
            gluster_cli volume stop "$GLUSTER_VOLUME_NAME" force >/dev/null 2>&1 || true
            gluster_cli volume delete "$GLUSTER_VOLUME_NAME" >/dev/null ||
                warn "could not delete gluster volume $GLUSTER_VOLUME_NAME"
            log "stopped and deleted gluster volume $GLUSTER_VOLUME_NAME"
        fi
        stop_component glusterd "$TIMEOUT"
    else
        rm -f "$PIDS/glusterd.pid"
    fi
    # The brick ends with `volume stop`; one left over (glusterd died first) is stopped here.
    stop_component gluster-brick "$TIMEOUT"
    rm -rf "$GLUSTER_BRICK" "$GLUSTER_DIR/lib/vols/$GLUSTER_VOLUME_NAME"
    # What glusterd put outside the state dir for this brick (the names hold its path).
    local brick_log sock
    brick_log="/var/log/glusterfs/bricks/$(printf '%s' "${GLUSTER_BRICK#/}" | tr '/' '-').log"
    rm -f "$brick_log"
    if [[ -s $GLUSTER_DIR/brick-socket ]]; then
        sock="$(cat "$GLUSTER_DIR/brick-socket")"
        [[ $sock == /var/run/gluster/*.socket || $sock == /run/gluster/*.socket ]] && rm -f "$sock"
        rm -f "$GLUSTER_DIR/brick-socket"
    fi
}

down_hdfs() {
    stop_component hdfs-stdin "$TIMEOUT"
    if alive hdfs; then
        if wait_exit hdfs "$TIMEOUT"; then
            log "hdfs shut down (its standard input closed)"
        else
            log "hdfs still running ${TIMEOUT}s after its standard input closed"
        fi
    fi
    stop_component hdfs "$TIMEOUT"
    rm -f "$HDFS_DIR/stdin"
}

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
            hdfs) sed -i '/MOON_TEST_HDFS_/d' "$DIR/env.sh" 2>/dev/null || true ;;
            gluster) sed -i '/MOON_TEST_GLUSTER_/d' "$DIR/env.sh" 2>/dev/null || true ;;
        esac
    done
fi

if [[ $PURGE == 1 ]]; then
    [[ $ALL == 1 ]] || die "--purge needs every server stopped (no --only)"
    mountpoint -q "$GLUSTER_MOUNT" 2>/dev/null && die "$GLUSTER_MOUNT is still mounted: not removing $DIR"
    rm -rf -- "$DIR"
    log "removed $DIR"
fi
log "down in $(fmt_ms $(($(now_ms) - T0)))"

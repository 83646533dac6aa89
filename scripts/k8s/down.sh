#!/usr/bin/env bash
# Stop the Kubernetes test cluster that scripts/k8s/up.sh started.
#
# Usage: scripts/k8s/down.sh [--dir DIR] [--purge] [--timeout SECONDS]
#
# Stops kwok, kube-scheduler, kube-controller-manager, kube-apiserver and etcd, in that
# order, by the PIDs recorded in DIR/pids (a PID is only signalled while its command line
# still names DIR, so a reused PID is never hit): SIGTERM, then SIGKILL after the timeout.
# Without --purge the state dir (certificates, kubeconfigs, etcd data, logs) is kept, and the
# next up.sh starts the same cluster again. Stopping a cluster that is not running is a no-op.
#
# Options:
#   --dir DIR          state dir (default: $MOON_TEST_CLUSTER_DIR or ~/.cache/moon/cluster)
#   --purge            remove the state dir afterwards
#   --timeout SECONDS  grace period of each component before SIGKILL (default: 15)
#   -h, --help         show this help
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_TAG=down

DIR="$DEFAULT_CLUSTER_DIR"
PURGE=0
TIMEOUT=15
while [[ $# -gt 0 ]]; do
    common_option "$@"
    if [[ $TAKEN -gt 0 ]]; then
        shift "$TAKEN"
        continue
    fi
    case "$1" in
        --purge) PURGE=1 ;;
        --timeout)
            [[ $# -ge 2 && $2 =~ ^[0-9]+$ ]] || die "--timeout needs a number of seconds"
            TIMEOUT=$2
            shift
            ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
    shift
done

T0=$(now_ms)
if [[ ! -d $DIR ]]; then
    log "no cluster dir at $DIR: nothing to stop"
    exit 0
fi
[[ -e $DIR/$MARKER ]] || die "$DIR is not a test cluster dir (no $MARKER)"
cluster_init

# Wait for an up.sh in progress on this dir (it holds DIR/.lock), but stop regardless.
exec 9>"$DIR/.lock"
flock -w 120 9 || log "warning: $DIR/.lock still held after 120s; stopping anyway"

rm -f "$DIR/.ready"
stop_all "$TIMEOUT"

if [[ $PURGE == 1 ]]; then
    rm -rf -- "$DIR"
    log "removed $DIR"
fi
log "down in $(fmt_ms $(($(now_ms) - T0)))"

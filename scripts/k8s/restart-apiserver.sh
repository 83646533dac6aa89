#!/usr/bin/env bash
# Restart only the kube-apiserver of a running test cluster (scripts/k8s/up.sh first).
#
# Usage: scripts/k8s/restart-apiserver.sh [--dir DIR] [--down-seconds N] [--timeout SECONDS]
#
# Stops the kube-apiserver recorded in DIR/pids/kube-apiserver.pid (SIGTERM, SIGKILL after
# --timeout), keeps it down for N more seconds (default 0), then starts it again through
# `up.sh --quiet`, that is with exactly the flags up.sh gives it, and the settings of its last
# start (MOON_TEST_AUDIT, unless set again in the environment), and waits until /readyz is ok.
# etcd, the controller manager, the scheduler and kwok keep running.
#
# What clients see: 429 with Retry-After while in-flight requests drain (up.sh starts the
# apiserver with --shutdown-send-retry-after, so it exits ~2 s after SIGTERM rather than waiting
# up to 60 s for open watches), then connection refused, and their watches end. The control
# plane's informers come back with client-go's back-off (up to 30 s): a Job whose pod ended right
# after an 11 s restart was marked Complete ~20 s later. Down for more than ~25 s, the node
# controller may mark nodes Unknown (grace 50 s, kwok's heartbeats every 20-25 s) until kwok
# makes them Ready again; up.sh waits for that.
#
# DIR/.lock (up.sh's) is held while the apiserver is down, so that a parallel up.sh does not
# start it early; it waits instead. After the restart up.sh also re-applies the Calico CRDs and
# checks the nodes, as on any start: a few requests of user admin, userAgent kubectl, which an
# audit log shows.
# Prints one line with the times; exits non-zero if the apiserver did not come back.
#
# Options:
#   --dir DIR           state dir (default: $MOON_TEST_CLUSTER_DIR or ~/.cache/moon/cluster)
#   --down-seconds N    seconds to keep it stopped, decimals allowed (default: 0)
#   --timeout SECONDS   grace period before SIGKILL (default: 15; 0 kills it at once, like a crash)
#   -h, --help          show this help
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_TAG=restart-apiserver

DIR="$DEFAULT_CLUSTER_DIR"
DOWN=0
TIMEOUT=15
while [[ $# -gt 0 ]]; do
    common_option "$@"
    if [[ $TAKEN -gt 0 ]]; then
        shift "$TAKEN"
        continue
    fi
    case "$1" in
        --down-seconds | --timeout)
            [[ $# -ge 2 && $2 =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "$1 needs a number of seconds"
            if [[ $1 == --timeout ]]; then
                [[ $2 =~ ^[0-9]+$ ]] || die "--timeout needs a whole number of seconds"
                TIMEOUT=$2
            else
                DOWN=$2
            fi
            shift
            ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
    shift
done
[[ -e $DIR/$MARKER && -f $DIR/admin.kubeconfig ]] || die "no cluster in $DIR (run scripts/k8s/up.sh)"
cluster_init

# Everything but the apiserver must be running: this restarts one component, it does not bring
# a cluster up (up.sh does).
for c in "${COMPONENTS[@]}"; do
    [[ $c == kube-apiserver ]] && continue
    alive "$c" || die "$c of $DIR is not running (start the cluster with scripts/k8s/up.sh)"
done

exec 9>"$DIR/.lock"
flock -w 600 9 || die "another up.sh holds $DIR/.lock"

T0=$(now_ms)
if alive kube-apiserver; then
    stop_component kube-apiserver "$TIMEOUT"
else
    log "kube-apiserver was not running"
fi
T_STOPPED=$(now_ms)
if [[ $DOWN != 0 && $DOWN != 0.0 ]]; then
    log "keeping it down for ${DOWN}s"
    sleep "$DOWN"
fi
# up.sh takes the lock itself (a lock on a file opened again is not shared with this one).
flock -u 9
exec 9>&-

T_START=$(now_ms)
if ! "$K8S_HERE/up.sh" --dir "$DIR" --quiet >/dev/null; then
    die "up.sh could not start the kube-apiserver again (see $LOGS/kube-apiserver.log)"
fi
alive kube-apiserver || die "kube-apiserver is not running after up.sh"
T_END=$(now_ms)
echo "kube-apiserver of $DIR restarted (pid $(pid_of kube-apiserver)): stopped in $(fmt_ms $((T_STOPPED - T0))), kept down $(fmt_ms $((T_START - T_STOPPED))), started and ready in $(fmt_ms $((T_END - T_START))); $(fmt_ms $((T_END - T0))) in all"

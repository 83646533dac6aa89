# Process helpers of the scripts that run test servers (sourced, not run; by scripts/k8s/lib.sh
# and scripts/storage/lib.sh).
#
# A server is a "component": started in its own session by start_component, output appended to
# $LOGS/NAME.log, PID in $PIDS/NAME.pid, stopped by stop_component (SIGTERM, then SIGKILL after
# a timeout). A recorded PID only counts while the process's command line names "$DIR/", so a
# reused PID is never signalled. Callers set DIR, LOGS and PIDS; LOG_TAG_DEFAULT names the
# family in log lines, PORTS_IN_USE_HINT says what to do when a port is taken, COMPONENT_STDIN
# (default /dev/null) is the standard input of the next start_component.
# shellcheck shell=bash

die() { printf 'error: %s\n' "$*" >&2; exit 1; }
# usage: the running script's help, its comment block from line 2 to `set -euo`.
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }
# common_option ARGS...: the options every script takes (--dir DIR, --dir=DIR, -h/--help),
# from the front of ARGS. Sets DIR, prints the help and exits for --help, and sets TAKEN to
# the number of arguments used (0 when the first is not one of them).
common_option() {
    TAKEN=0
    case "$1" in
        --dir)
            [[ $# -ge 2 ]] || die "--dir needs a directory"
            DIR=$2
            TAKEN=2
            ;;
        --dir=*) DIR=${1#--dir=}; TAKEN=1 ;;
        -h | --help) usage; exit 0 ;;
    esac
}
warn() { printf 'warning: %s\n' "$*" >&2; } # shown even with --quiet
log() { # progress lines; --quiet sets QUIET=1
    [[ ${QUIET:-0} == 1 ]] && return 0
    printf '[%s %s] %s\n' "${LOG_TAG:-${LOG_TAG_DEFAULT:-servers}}" "$(date +%H:%M:%S)" "$*"
}
now_ms() { local t=$EPOCHREALTIME; t=${t//[.,]/}; echo $((t / 1000)); }
fmt_ms() { printf '%d.%01ds' $(($1 / 1000)) $((($1 % 1000) / 100)); }

pid_of() { # pid_of NAME -> the recorded PID (empty if none)
    local f="$PIDS/$1.pid"
    [[ -s $f ]] && tr -dc '0-9' <"$f"
    return 0
}

pid_alive() { # pid_alive PID: running (not a zombie) and started for this DIR
    local pid=$1 state
    [[ -n $pid && -d /proc/$pid ]] || return 1
    state="$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$pid/status" 2>/dev/null)" || return 1
    [[ -n $state && $state != Z && $state != X ]] || return 1
    # Guard against PID reuse: every component gets a path under DIR on its command line.
    tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$DIR/" || return 1
}

alive() { pid_alive "$(pid_of "$1")"; }

# start_component NAME [ENV=VALUE...] -- CMD ARGS...: run CMD in its own session, output
# appended to DIR/logs/NAME.log, PID recorded in DIR/pids/NAME.pid (written by the process
# itself just before it execs CMD, so it is the PID of CMD). File descriptor 9 (up.sh's lock
# on DIR/.lock) is closed for CMD, or the daemon would hold the lock for its whole life.
start_component() {
    local name=$1
    shift
    local envs=()
    while [[ $# -gt 0 && $1 != -- ]]; do envs+=("$1"); shift; done
    [[ ${1:-} == -- ]] && shift
    local logf="$LOGS/$name.log" pidf="$PIDS/$name.pid"
    mkdir -p "$LOGS" "$PIDS"
    rm -f "$pidf"
    printf '\n===== %s starting: %s\n' "$(date -Is)" "$*" >>"$logf"
    # shellcheck disable=SC2016 # $0/$$/$@ belong to the inner bash
    env "${envs[@]+"${envs[@]}"}" setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidf" "$@" \
        <"${COMPONENT_STDIN:-/dev/null}" >>"$logf" 2>&1 9>&- &
    local i
    for ((i = 0; i < 50; i++)); do
        [[ -s $pidf ]] && break
        sleep 0.1
    done
    [[ -s $pidf ]] || die "$name did not start (see $logf)"
    log "started $name (pid $(pid_of "$name"), log $logf)"
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# require_free_ports NAME PORT...: fail before starting NAME if something already listens there
# (another state dir with the same ports, say: its server would answer our health checks).
require_free_ports() {
    local name=$1 p
    shift
    for p in "$@"; do
        port_in_use "$p" &&
            die "cannot start $name: 127.0.0.1:$p is already in use (${PORTS_IN_USE_HINT:-see the MOON_TEST_*_PORT variables in --help})"
    done
    return 0
}

# stop_component NAME [TIMEOUT_S]: SIGTERM the recorded PID, SIGKILL after TIMEOUT_S.
stop_component() {
    local name=$1 timeout=${2:-15} pid
    pid="$(pid_of "$name")"
    if [[ -z $pid ]]; then
        rm -f "$PIDS/$name.pid"
        return 0
    fi
    if ! pid_alive "$pid"; then
        rm -f "$PIDS/$name.pid"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    local t0
    t0=$(now_ms)
    local deadline=$((t0 + timeout * 1000))
    while pid_alive "$pid"; do
        if (($(now_ms) >= deadline)); then
            log "$name (pid $pid) still running after ${timeout}s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            local i
            for ((i = 0; i < 50; i++)); do pid_alive "$pid" || break; sleep 0.1; done
            break
        fi
        sleep 0.1
    done
    pid_alive "$pid" && die "$name (pid $pid) did not stop"
    rm -f "$PIDS/$name.pid"
    log "stopped $name (pid $pid, $(fmt_ms $(($(now_ms) - t0))))"
}

stop_all() { # stop_all [TIMEOUT_S]: every name of COMPONENTS, last first
    local i
    for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do
        stop_component "${COMPONENTS[$i]}" "${1:-15}"
    done
}

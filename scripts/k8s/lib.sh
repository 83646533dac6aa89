# Shared by the scripts in scripts/k8s/ (sourced, not run).
#
# Defines the state dir layout, the ports and the binaries; the process helpers come from
# scripts/servers.sh.
# Callers set DIR (the state dir) before calling cluster_init.
# shellcheck shell=bash disable=SC2034
# (SC2034: the variables set here are used by the scripts that source this file)

K8S_HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
K8S_ROOT="$(cd "$K8S_HERE/../.." && pwd)"

# MOON_CACHE, GOMODCACHE, GOCACHE: where every cache of the scripts lives.
# shellcheck source=../cache.sh
source "$K8S_ROOT/scripts/cache.sh"
DEFAULT_CLUSTER_DIR="${MOON_TEST_CLUSTER_DIR:-$MOON_CACHE/cluster}"

KUBE_VERSION="$(sed -n 's/^[[:space:]]*\(require[[:space:]]\{1,\}\)\{0,1\}k8s\.io\/kubernetes[[:space:]]\{1,\}\(v[0-9][^[:space:]]*\).*/\2/p' "$K8S_HERE/gobuild/go.mod" | head -n1)"
KWOK_VERSION="v0.8.0"
K8S_BIN="$MOON_CACHE/k8s/$KUBE_VERSION/bin"
KWOK_BIN="$MOON_CACHE/kwok/$KWOK_VERSION/bin"

# Start order; stop order is the reverse.
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)
MARKER=".moon-test-cluster"

# die, warn, log, usage, common_option, now_ms, fmt_ms and the component helpers.
# shellcheck source=../servers.sh
source "$K8S_ROOT/scripts/servers.sh"
LOG_TAG_DEFAULT=k8s
PORTS_IN_USE_HINT="another test cluster? see the MOON_TEST_*_PORT variables in --help"

# cluster_init: paths under DIR, and the ports (fixed when the dir is first made, kept in
# DIR/cluster.env; the MOON_TEST_*_PORT variables only matter for a new dir).
cluster_init() {
    DIR="$(mkdir -p "$DIR" && cd "$DIR" && pwd)"
    PKI="$DIR/pki"
    CONF="$DIR/config"
    LOGS="$DIR/logs"
    PIDS="$DIR/pids"
    ETCD_DATA="$DIR/etcd-data"
    if [[ -f $DIR/cluster.env ]]; then
        # shellcheck disable=SC1091
        source "$DIR/cluster.env"
    fi
    ETCD_PORT="${ETCD_PORT:-${MOON_TEST_ETCD_PORT:-23791}}"
    ETCD_PEER_PORT="${ETCD_PEER_PORT:-${MOON_TEST_ETCD_PEER_PORT:-23792}}"
    API_PORT="${API_PORT:-${MOON_TEST_APISERVER_PORT:-26443}}"
    KCM_PORT="${KCM_PORT:-${MOON_TEST_KCM_PORT:-26457}}"
    SCHED_PORT="${SCHED_PORT:-${MOON_TEST_SCHEDULER_PORT:-26459}}"
    KWOK_PORT="${KWOK_PORT:-${MOON_TEST_KWOK_PORT:-26480}}"
    SERVICE_CIDR="${SERVICE_CIDR:-10.96.0.0/16}"
    SERVICE_IP="${SERVICE_IP:-10.96.0.1}"
    POD_CIDR="${POD_CIDR:-10.244.0.0/16}"
    API_URL="https://127.0.0.1:$API_PORT"
}

save_cluster_env() {
    cat >"$DIR/cluster.env.tmp" <<EOF
# written by scripts/k8s/up.sh; the ports of this cluster dir
ETCD_PORT=$ETCD_PORT
ETCD_PEER_PORT=$ETCD_PEER_PORT
API_PORT=$API_PORT
KCM_PORT=$KCM_PORT
SCHED_PORT=$SCHED_PORT
KWOK_PORT=$KWOK_PORT
SERVICE_CIDR=$SERVICE_CIDR
SERVICE_IP=$SERVICE_IP
POD_CIDR=$POD_CIDR
EOF
    mv "$DIR/cluster.env.tmp" "$DIR/cluster.env"
}

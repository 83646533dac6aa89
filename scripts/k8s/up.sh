#!/usr/bin/env bash
# Bring up the real Kubernetes test cluster (control plane + KWOK fake nodes) on loopback.
#
# Usage: scripts/k8s/up.sh [--dir DIR] [--quiet]
#
# Runs, each as its own process bound to 127.0.0.1, PIDs in DIR/pids, logs in DIR/logs:
#   etcd (Debian etcd-server)       http://127.0.0.1:23791 (peer 23792)
#   kube-apiserver                  https://127.0.0.1:26443  (RBAC + Node authorization)
#   kube-controller-manager         https://127.0.0.1:26457/healthz
#   kube-scheduler                  https://127.0.0.1:26459/healthz
#   kwok                            http://127.0.0.1:26480/healthz, and on the same port (HTTPS,
#                                   certificate of the cluster CA) the kubelet API of every fake node
# and creates 7 fake nodes (cpu-0..2; gpu-h100-0..1 with 8 GPUs; gpu-a100-0..1 with 4 GPUs),
# every one tainted kwok.x-k8s.io/node=fake:NoSchedule (the GPU ones also
# nvidia.com/gpu=present:NoSchedule), and applies the Calico projectcalico.org/v3 policy CRDs,
# Fluid's Dataset and AlluxioRuntime CRDs (what a tenant's cached HDFS storage becomes) and KEDA's
# ScaledObject CRD (what a service that scales to zero gets).
# Pods that run to completion end 1-2 s after Running: Failed (exit code 1) with annotation
# moon.test/fail="true" or env MOON_TEST_FAIL=1 in the first container, else Succeeded.
# `kubectl logs` of any container on a fake node prints the same three lines
# ("moon-test log line 1".."3", from DIR/config/kwok-container.log); `kubectl logs -f` prints them
# and then keeps following until the client stops (kwok cannot tell that a container ended).
# See docs/test-cluster.md.
#
# Writes DIR/admin.kubeconfig (system:masters), DIR/alice.kubeconfig (group team-a),
# DIR/bob.kubeconfig (group team-b), DIR/tokens/{admin,alice,bob}.token (the same users as
# bearer tokens) and DIR/env.sh (the exports below). Prints `export KUBECONFIG=...` last.
#
# Idempotent: on a cluster that is up it only checks and prints the summary; components
# that died (or that scripts/k8s/restart-apiserver.sh stopped) are started again with the same
# flags and the settings of their last start (certificates, etcd data and nodes are kept).
# Builds the binaries (scripts/k8s/build.sh) and installs etcd/openssl
# (scripts/k8s/install.sh) first when they are missing.
#
# Options:
#   --dir DIR   state dir (default: $MOON_TEST_CLUSTER_DIR or ~/.cache/moon/cluster)
#   --quiet     print only the export line at the end
#   -h, --help  show this help
#
# Environment:
#   MOON_TEST_CLUSTER_DIR    default state dir
#   MOON_CACHE_DIR           cache root of the binaries (default: ~/.cache/moon)
#   MOON_TEST_CALICO_CRDS    Calico CRD file to apply
#                            (default: <repo>/tests/data/crds/calico/crds-v3-policy.yaml)
#   MOON_TEST_FLUID_CRDS     directory of the Fluid CRDs to apply
#                            (default: <repo>/tests/data/crds/fluid)
#   MOON_TEST_KEDA_CRDS      directory of the KEDA CRDs to apply
#                            (default: <repo>/tests/data/crds/keda)
#   MOON_TEST_MULTUS_CRDS    directory of the Multus CRD to apply
#                            (default: <repo>/tests/data/crds/multus)
#   MOON_TEST_APISERVER_PORT, MOON_TEST_ETCD_PORT, MOON_TEST_ETCD_PEER_PORT,
#   MOON_TEST_KCM_PORT, MOON_TEST_SCHEDULER_PORT, MOON_TEST_KWOK_PORT
#                            ports, read when a state dir is first made (then kept in
#                            DIR/cluster.env)
#   MOON_TEST_AUDIT=1        the apiserver writes an audit log, DIR/logs/audit.log (level
#                            Metadata, stage RequestReceived omitted, the control plane's own
#                            users, health checks and kwok left out); count it with
#                            scripts/k8s/count-requests.py. MOON_TEST_AUDIT=0 turns it off again.
#   MOON_TEST_KUBE_API_QPS, MOON_TEST_KUBE_API_BURST
#                            client rate limit of kube-controller-manager (--kube-api-qps/-burst)
#                            and kube-scheduler (clientConnection.qps/burst); default 500 / 1000
#                            These three are read when the component they affect starts, and
#                            kept in DIR/config/COMPONENT.env for its next start; a running
#                            component keeps its settings (up.sh warns): change them with
#                            restart-apiserver.sh (the audit log), or down.sh and up.sh.
#   MOON_TEST_CLUSTER_KEEP_ON_FAILURE=1   leave what was started running when up fails
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_TAG=up

DIR="$DEFAULT_CLUSTER_DIR"
QUIET=0
while [[ $# -gt 0 ]]; do
    common_option "$@"
    if [[ $TAKEN -gt 0 ]]; then
        shift "$TAKEN"
        continue
    fi
    case "$1" in
        --quiet) QUIET=1 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
    shift
done
[[ -n $KUBE_VERSION ]] || die "cannot read the Kubernetes version from $K8S_HERE/gobuild/go.mod"

T0=$(now_ms)
if [[ -d $DIR && ! -e $DIR/$MARKER ]]; then
    shopt -s nullglob dotglob
    entries=("$DIR"/*)
    shopt -u nullglob dotglob
    [[ ${#entries[@]} -eq 0 ]] ||
        die "$DIR is not empty and is not a test cluster dir (no $MARKER); pick another --dir"
fi
cluster_init
touch "$DIR/$MARKER"

# One up.sh at a time per dir (parallel test workers may all call it).
exec 9>"$DIR/.lock"
flock -w 600 9 || die "another up.sh holds $DIR/.lock"

# --------------------------------------------------------------------------- prerequisites
CALICO_CRDS="${MOON_TEST_CALICO_CRDS:-$K8S_ROOT/tests/data/crds/calico/crds-v3-policy.yaml}"
[[ -f $CALICO_CRDS ]] ||
    die "Calico CRDs not found at $CALICO_CRDS (part of the repository: tests/data/crds/calico/; or set MOON_TEST_CALICO_CRDS)"
FLUID_CRDS_DIR="${MOON_TEST_FLUID_CRDS:-$K8S_ROOT/tests/data/crds/fluid}"
# Only the kinds moon renders: DataLoad is not one of them.
FLUID_CRDS=("$FLUID_CRDS_DIR/data.fluid.io_datasets.yaml" "$FLUID_CRDS_DIR/data.fluid.io_alluxioruntimes.yaml")
for crd in "${FLUID_CRDS[@]}"; do
    [[ -f $crd ]] ||
        die "Fluid CRD not found at $crd (part of the repository: tests/data/crds/fluid/; or set MOON_TEST_FLUID_CRDS)"
done
# Only the kind moon renders: a ScaledObject.
KEDA_CRD="${MOON_TEST_KEDA_CRDS:-$K8S_ROOT/tests/data/crds/keda}/keda.sh_scaledobjects.yaml"
[[ -f $KEDA_CRD ]] ||
    die "KEDA CRD not found at $KEDA_CRD (part of the repository: tests/data/crds/keda/; or set MOON_TEST_KEDA_CRDS)"

# Multus' NetworkAttachmentDefinition: what a tenant's underlay networks become.
MULTUS_CRD="${MOON_TEST_MULTUS_CRDS:-$K8S_ROOT/tests/data/crds/multus}/network-attachment-definitions.yaml"
[[ -f $MULTUS_CRD ]] ||
    die "Multus CRD not found at $MULTUS_CRD (part of the repository: tests/data/crds/multus/; or set MOON_TEST_MULTUS_CRDS)"

if ! command -v etcd >/dev/null || ! command -v openssl >/dev/null || ! command -v curl >/dev/null; then
    log "etcd/openssl/curl missing: running scripts/k8s/install.sh"
    "$K8S_HERE/install.sh"
fi
need_build=0
for c in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    [[ -x $K8S_BIN/$c ]] || need_build=1
done
[[ -x $KWOK_BIN/kwok ]] || need_build=1
if [[ $need_build == 1 ]]; then
    log "binaries missing: running scripts/k8s/build.sh (minutes the first time: 6.5 min cold seen on 2 cores)"
    "$K8S_HERE/build.sh"
fi
KUBECTL="$K8S_BIN/kubectl"

# --------------------------------------------------------------------------- settings
# setting COMPONENT KEY VAR DEFAULT: $VAR if set, else KEY as the last start of COMPONENT recorded
# it in DIR/config/COMPONENT.env, else DEFAULT. So a component that is started again (it died, or
# restart-apiserver.sh stopped it) gets the settings it had, not the defaults.
setting() {
    local comp=$1 key=$2 var=$3 def=$4 v=""
    if [[ -n ${!var:-} ]]; then
        printf '%s\n' "${!var}"
        return 0
    fi
    [[ -f $CONF/$comp.env ]] && v="$(sed -n "s/^$key=//p" "$CONF/$comp.env" | tail -n1)"
    printf '%s\n' "${v:-$def}"
}
record_settings() { # record_settings COMPONENT KEY=VALUE...: called when COMPONENT starts
    local comp=$1
    shift
    printf '%s\n' "# settings of the last start of $comp (scripts/k8s/up.sh)" "$@" >"$CONF/$comp.env.tmp"
    mv "$CONF/$comp.env.tmp" "$CONF/$comp.env"
}
# recorded COMPONENT KEY: the value recorded by the last start of COMPONENT (empty if none)
recorded() { [[ -f $CONF/$1.env ]] && sed -n "s/^$2=//p" "$CONF/$1.env" | tail -n1; return 0; }

AUDIT="$(setting kube-apiserver AUDIT MOON_TEST_AUDIT 0)"
[[ $AUDIT == 0 || $AUDIT == 1 ]] || die "MOON_TEST_AUDIT must be 0 or 1, not '$AUDIT'"
# Enough for a client that creates 1,000 Jobs at once: the job controller then creates 1,000 pods
# and updates 1,000 Job statuses, the scheduler binds 1,000 pods, and at client-go's defaults
# (20 qps, burst 30) that alone takes a minute or more.
KUBE_API_QPS="$(setting kube-controller-manager KUBE_API_QPS MOON_TEST_KUBE_API_QPS 500)"
KUBE_API_BURST="$(setting kube-controller-manager KUBE_API_BURST MOON_TEST_KUBE_API_BURST 1000)"
[[ $KUBE_API_QPS =~ ^[0-9]+(\.[0-9]+)?$ && $KUBE_API_QPS != 0 ]] ||
    die "MOON_TEST_KUBE_API_QPS must be a positive number, not '$KUBE_API_QPS'"
[[ $KUBE_API_BURST =~ ^[1-9][0-9]*$ ]] ||
    die "MOON_TEST_KUBE_API_BURST must be a positive integer, not '$KUBE_API_BURST'"

# A setting asked for in the environment does not reach a component that is already running
# (parallel test workers all call up.sh: none of them may restart what the others use). Say so.
settings_not_applied() {
    local comp key var want have how
    while read -r comp key var; do
        want=${!var:-}
        if [[ -z $want ]] || ! alive "$comp"; then continue; fi
        have="$(recorded "$comp" "$key")"
        how="scripts/k8s/down.sh and up.sh"
        [[ $comp == kube-apiserver ]] && how="$var=$want scripts/k8s/restart-apiserver.sh"
        [[ $want == "${have:-}" ]] ||
            warn "$var=$want is not in effect: $comp is running with $key=${have:-? (started by an older up.sh)} (to change it: $how)"
    done <<'EOF2'
kube-apiserver AUDIT MOON_TEST_AUDIT
kube-controller-manager KUBE_API_QPS MOON_TEST_KUBE_API_QPS
kube-controller-manager KUBE_API_BURST MOON_TEST_KUBE_API_BURST
EOF2
}
settings_not_applied

# --------------------------------------------------------------------------- fast path
apiserver_ready() {
    curl -sf --max-time 5 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
        "$API_URL/readyz" >/dev/null 2>&1
}

all_alive=1
for c in "${COMPONENTS[@]}"; do alive "$c" || all_alive=0; done

summary() {
    if [[ $QUIET == 0 ]]; then
        echo
        echo "Kubernetes $KUBE_VERSION test cluster in $DIR (up in $(fmt_ms $(($(now_ms) - T0))))"
        echo "  apiserver   $API_URL"
        echo "  etcd        http://127.0.0.1:$ETCD_PORT ($(etcd --version 2>/dev/null | sed -n 's/^etcd Version: //p'))"
        echo "  kwok        $KWOK_VERSION, http://127.0.0.1:$KWOK_PORT"
        echo "  users       admin (system:masters)  alice (team-a)  bob (team-b)"
        echo "  kubeconfig  $DIR/{admin,alice,bob}.kubeconfig"
        echo "  tokens      $DIR/tokens/{admin,alice,bob}.token"
        echo "  logs        $LOGS"
        if [[ $(recorded kube-apiserver AUDIT) == 1 ]]; then
            echo "  audit log   $LOGS/audit.log (count: scripts/k8s/count-requests.py --dir $DIR)"
        fi
        echo "  stop        scripts/k8s/down.sh --dir $DIR [--purge]"
        echo
        "$KUBECTL" --kubeconfig "$DIR/admin.kubeconfig" get nodes \
            -L nvidia.com/gpu.product,nvidia.com/gpu.count 2>/dev/null | sed 's/^/  /' || true
        echo
        echo "# source $DIR/env.sh, or:"
    fi
    echo "export KUBECONFIG=$DIR/admin.kubeconfig"
}

if [[ $all_alive == 1 ]] && apiserver_ready && [[ -f $DIR/.ready ]]; then
    log "cluster in $DIR is already up"
    summary
    exit 0
fi

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
        if [[ ${MOON_TEST_CLUSTER_KEEP_ON_FAILURE:-0} != 1 && ${#STARTED[@]} -gt 0 ]]; then
            echo "stopping what this run started: ${STARTED[*]}" >&2
            local i
            for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do
                stop_component "${STARTED[$i]}" 10 >&2 || true
            done
        fi
    fi
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

rm -f "$DIR/.ready"
mkdir -p "$PKI" "$CONF" "$LOGS" "$PIDS" "$DIR/tokens"
chmod 700 "$PKI" "$DIR/tokens"
save_cluster_env

# --------------------------------------------------------------------------- certificates
# issue NAME SUBJECT EXTENSIONS: a key and a certificate signed by the cluster CA.
issue() {
    local name=$1 subj=$2 ext=$3
    [[ -s $PKI/$name.crt && -s $PKI/$name.key ]] && return 0
    openssl genrsa -out "$PKI/$name.key" 2048 2>/dev/null
    openssl req -new -key "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
    printf '%s\n' "$ext" >"$PKI/$name.ext"
    openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
        -days 3650 -sha256 -extfile "$PKI/$name.ext" -out "$PKI/$name.crt" 2>/dev/null
    rm -f "$PKI/$name.csr" "$PKI/$name.ext"
}

make_pki() {
    if [[ ! -s $PKI/ca.crt || ! -s $PKI/ca.key ]]; then
        log "creating certificates in $PKI"
        rm -f "$PKI"/*.crt "$PKI"/*.key
        openssl genrsa -out "$PKI/ca.key" 2048 2>/dev/null
        openssl req -x509 -new -nodes -key "$PKI/ca.key" -subj "/CN=moon-test-ca" -days 3650 -sha256 \
            -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
            -out "$PKI/ca.crt" 2>/dev/null
    fi
    # The front-proxy CA only fills in extension-apiserver-authentication (the controller
    # manager and scheduler complain without it); no certificate is ever issued from it.
    if [[ ! -s $PKI/front-proxy-ca.crt ]]; then
        openssl genrsa -out "$PKI/front-proxy-ca.key" 2048 2>/dev/null
        openssl req -x509 -new -nodes -key "$PKI/front-proxy-ca.key" -subj "/CN=moon-test-front-proxy-ca" \
            -days 3650 -sha256 -out "$PKI/front-proxy-ca.crt" 2>/dev/null
    fi
    local client="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
    issue apiserver "/CN=kube-apiserver" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:$SERVICE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
    issue admin "/O=system:masters/CN=admin" "$client"
    issue alice "/O=team-a/CN=alice" "$client"
    issue bob "/O=team-b/CN=bob" "$client"
    issue kube-controller-manager "/CN=system:kube-controller-manager" "$client"
    issue kube-scheduler "/CN=system:kube-scheduler" "$client"
    # kwok writes the status of nodes and pods on behalf of all fake kubelets.
    issue kwok "/O=system:masters/CN=kwok" "$client"
    # kwok also serves the kubelet API of the fake nodes (pod logs); the apiserver reaches it at
    # the nodes' InternalIP 127.0.0.1 over HTTPS and checks this certificate against the cluster CA.
    issue kwok-serving "/CN=kwok-kubelet" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost"
    # The apiserver's client certificate towards kubelets (kwok does not check it; a real kubelet
    # would, and this is the identity kubeadm gives it).
    issue apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "$client"
    if [[ ! -s $PKI/sa.key || ! -s $PKI/sa.pub ]]; then
        openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
        openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
    fi
    if [[ ! -s $PKI/tokens.csv ]]; then
        local u g t
        : >"$PKI/tokens.csv.tmp"
        for u in admin:system:masters alice:team-a bob:team-b; do
            g=${u#*:}
            u=${u%%:*}
            t="$(openssl rand -hex 24)"
            printf '%s,%s,%s,"%s"\n' "$t" "$u" "$u" "$g" >>"$PKI/tokens.csv.tmp"
            printf '%s\n' "$t" >"$DIR/tokens/$u.token"
        done
        mv "$PKI/tokens.csv.tmp" "$PKI/tokens.csv"
    fi
    chmod 600 "$PKI"/*.key "$PKI/tokens.csv" "$DIR"/tokens/*.token
}

# --------------------------------------------------------------------------- kubeconfigs
b64() { base64 -w0 <"$1"; }

write_kubeconfig() { # write_kubeconfig FILE USER CERTNAME
    local file=$1 user=$2 cert=$3
    cat >"$file.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: moon-test
  cluster:
    server: $API_URL
    certificate-authority-data: $(b64 "$PKI/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $(b64 "$PKI/$cert.crt")
    client-key-data: $(b64 "$PKI/$cert.key")
contexts:
- name: $user@moon-test
  context:
    cluster: moon-test
    user: $user
    namespace: default
current-context: $user@moon-test
EOF
    chmod 600 "$file.tmp"
    mv "$file.tmp" "$file"
}

make_kubeconfigs() {
    write_kubeconfig "$DIR/admin.kubeconfig" admin admin
    write_kubeconfig "$DIR/alice.kubeconfig" alice alice
    write_kubeconfig "$DIR/bob.kubeconfig" bob bob
    write_kubeconfig "$CONF/kube-controller-manager.kubeconfig" system:kube-controller-manager kube-controller-manager
    write_kubeconfig "$CONF/kube-scheduler.kubeconfig" system:kube-scheduler kube-scheduler
    write_kubeconfig "$CONF/kwok.kubeconfig" kwok kwok
    cat >"$DIR/env.sh" <<EOF
# written by scripts/k8s/up.sh: the moon test cluster in $DIR
export KUBECONFIG=$DIR/admin.kubeconfig
export MOON_TEST_CLUSTER_DIR=$DIR
export MOON_TEST_KUBECONFIG_ADMIN=$DIR/admin.kubeconfig
export MOON_TEST_KUBECONFIG_ALICE=$DIR/alice.kubeconfig
export MOON_TEST_KUBECONFIG_BOB=$DIR/bob.kubeconfig
export MOON_TEST_APISERVER=$API_URL
export MOON_TEST_CA=$PKI/ca.crt
EOF
}

# --------------------------------------------------------------------------- waiting
wait_for() { # wait_for WHAT TIMEOUT_S COMPONENT CMD...: poll CMD until it succeeds
    local what=$1 timeout=$2 comp=$3
    shift 3
    local t deadline
    t=$(now_ms)
    deadline=$((t + timeout * 1000))
    until "$@" >/dev/null 2>&1; do
        if [[ -n $comp ]] && ! alive "$comp"; then
            die "$comp exited while waiting for $what (see $LOGS/$comp.log)"
        fi
        (($(now_ms) < deadline)) || die "timed out after ${timeout}s waiting for $what"
        sleep 0.2
    done
    log "$what ($(fmt_ms $(($(now_ms) - t))))"
}

k() { "$KUBECTL" --kubeconfig "$DIR/admin.kubeconfig" --request-timeout=20s "$@"; }

# --------------------------------------------------------------------------- components
start_etcd() {
    mkdir -p "$ETCD_DATA"
    chmod 700 "$ETCD_DATA"
    require_free_ports etcd "$ETCD_PORT" "$ETCD_PEER_PORT"
    start_component etcd -- etcd \
        --name=moon-test \
        --data-dir="$ETCD_DATA" \
        --listen-client-urls="http://127.0.0.1:$ETCD_PORT" \
        --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
        --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
        --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
        --initial-cluster="moon-test=http://127.0.0.1:$ETCD_PEER_PORT" \
        --initial-cluster-state=new \
        --quota-backend-bytes=$((4 * 1024 * 1024 * 1024)) \
        --snapshot-count=10000 \
        --logger=zap --log-outputs=stderr
    STARTED+=(etcd)
    wait_for "etcd healthy" 30 etcd curl -sf --max-time 2 "http://127.0.0.1:$ETCD_PORT/health"
}

# The audit policy of MOON_TEST_AUDIT=1: one event per request (stage RequestReceived omitted;
# long-running requests such as watches and log streams still give two, ResponseStarted and
# ResponseComplete, with the same auditID), at level Metadata (user, userAgent, verb, objectRef,
# response code, timestamps; no bodies). Left out: the control plane's own traffic (controller
# manager, scheduler, the apiserver's loopback client, kwok, nodes, and the controllers'
# kube-system service accounts) and health checks, so that what is left is the test's clients.
write_audit_policy() {
    cat >"$CONF/audit-policy.yaml.tmp" <<'EOF'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: None
  users:
  - system:kube-controller-manager
  - system:kube-scheduler
  - system:apiserver
  - kwok
- level: None
  userGroups:
  - system:nodes
  - system:serviceaccounts:kube-system
- level: None
  nonResourceURLs: [/healthz, /healthz/*, /readyz, /readyz/*, /livez, /livez/*]
- level: Metadata
EOF
    mv "$CONF/audit-policy.yaml.tmp" "$CONF/audit-policy.yaml"
}

start_apiserver() {
    # WatchList=false: with it on, the apiserver turns every watch from resourceVersion ""/"0"
    # into a watch-list stream, and then refuses that stream on etcd < 3.4.31 (Debian's 3.4.23
    # has no RequestWatchProgress). Clients that watch that way (kwok v0.8.0's informers) then
    # fail, back off and relist over and over: pods lagged 15-60 s behind their stages.
    #
    # Kubelet API (pod logs): a fake node's kubelet is kwok, at the node's InternalIP (127.0.0.1,
    # kwok --node-ip) and status.daemonEndpoints.kubeletEndpoint.Port (kwok's port). InternalIP
    # only: the default order tries a Hostname address first, which for a fake node would be its
    # name ("cpu-0") and resolve nowhere (our nodes have none, unless kwok ever adds one).
    #
    # --shutdown-send-retry-after: on SIGTERM the apiserver's HTTP server waits for open
    # connections (the watches of the controller manager, scheduler and kwok) for up to the
    # request timeout, 60 s; restart-apiserver.sh hit its 15 s SIGKILL every time. With it, the
    # in-flight short requests drain (new ones get 429 + Retry-After meanwhile), then the server
    # gives connections 2 s and exits.
    local audit=()
    if [[ $AUDIT == 1 ]]; then
        write_audit_policy
        # blocking: an event is written before the response goes out, so a benchmark that reads
        # the log right after its client finished sees all of its requests. Rotation at 1 GiB
        # (to audit-TIMESTAMP.log beside it, all kept; count-requests.py reads those too).
        audit=(
            --audit-policy-file="$CONF/audit-policy.yaml"
            --audit-log-path="$LOGS/audit.log"
            --audit-log-format=json
            --audit-log-mode=blocking
            --audit-log-maxsize=1024
            --audit-log-maxbackup=0
            --audit-log-maxage=0
        )
    fi
    record_settings kube-apiserver "AUDIT=$AUDIT"
    require_free_ports kube-apiserver "$API_PORT"
    start_component kube-apiserver -- "$K8S_BIN/kube-apiserver" \
        --bind-address=127.0.0.1 \
        --advertise-address=127.0.0.1 \
        --secure-port="$API_PORT" \
        --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
        --etcd-prefix=/registry \
        --tls-cert-file="$PKI/apiserver.crt" \
        --tls-private-key-file="$PKI/apiserver.key" \
        --client-ca-file="$PKI/ca.crt" \
        --token-auth-file="$PKI/tokens.csv" \
        --requestheader-client-ca-file="$PKI/front-proxy-ca.crt" \
        --requestheader-allowed-names=front-proxy-client \
        --requestheader-username-headers=X-Remote-User \
        --requestheader-group-headers=X-Remote-Group \
        --requestheader-extra-headers-prefix=X-Remote-Extra- \
        --service-account-issuer=https://kubernetes.default.svc.cluster.local \
        --service-account-key-file="$PKI/sa.pub" \
        --service-account-signing-key-file="$PKI/sa.key" \
        --service-cluster-ip-range="$SERVICE_CIDR" \
        --endpoint-reconciler-type=none \
        --authorization-mode=Node,RBAC \
        --enable-admission-plugins=NamespaceLifecycle,LimitRanger,ServiceAccount,DefaultTolerationSeconds,DefaultStorageClass,ResourceQuota,Priority,NodeRestriction,TaintNodesByCondition,PodSecurity,MutatingAdmissionWebhook,ValidatingAdmissionWebhook,ValidatingAdmissionPolicy \
        --allow-privileged=true \
        --max-requests-inflight=1000 \
        --max-mutating-requests-inflight=500 \
        --event-ttl=1h \
        --feature-gates=WatchList=false \
        --shutdown-send-retry-after=true \
        --kubelet-preferred-address-types=InternalIP \
        --kubelet-certificate-authority="$PKI/ca.crt" \
        --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" \
        --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
        "${audit[@]+"${audit[@]}"}" \
        --profiling=false \
        --v=1
    STARTED+=(kube-apiserver)
    [[ $AUDIT == 1 ]] && log "audit log: $LOGS/audit.log"
    return 0
}

start_controller_manager() {
    local kc="$CONF/kube-controller-manager.kubeconfig"
    record_settings kube-controller-manager "KUBE_API_QPS=$KUBE_API_QPS" "KUBE_API_BURST=$KUBE_API_BURST"
    require_free_ports kube-controller-manager "$KCM_PORT"
    start_component kube-controller-manager -- "$K8S_BIN/kube-controller-manager" \
        --bind-address=127.0.0.1 \
        --secure-port="$KCM_PORT" \
        --cert-dir="$CONF/kube-controller-manager-certs" \
        --kubeconfig="$kc" \
        --authentication-kubeconfig="$kc" \
        --authorization-kubeconfig="$kc" \
        --kube-api-qps="$KUBE_API_QPS" \
        --kube-api-burst="$KUBE_API_BURST" \
        --controllers='*' \
        --use-service-account-credentials=true \
        --service-account-private-key-file="$PKI/sa.key" \
        --root-ca-file="$PKI/ca.crt" \
        --cluster-signing-cert-file="$PKI/ca.crt" \
        --cluster-signing-key-file="$PKI/ca.key" \
        --service-cluster-ip-range="$SERVICE_CIDR" \
        --cluster-name=moon-test \
        --leader-elect=false \
        --profiling=false \
        --v=1
    STARTED+=(kube-controller-manager)
}

start_scheduler() {
    local kc="$CONF/kube-scheduler.kubeconfig"
    cat >"$CONF/kube-scheduler.yaml" <<EOF
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: $kc
  qps: $KUBE_API_QPS
  burst: $KUBE_API_BURST
leaderElection:
  leaderElect: false
EOF
    require_free_ports kube-scheduler "$SCHED_PORT"
    start_component kube-scheduler -- "$K8S_BIN/kube-scheduler" \
        --config="$CONF/kube-scheduler.yaml" \
        --bind-address=127.0.0.1 \
        --secure-port="$SCHED_PORT" \
        --cert-dir="$CONF/kube-scheduler-certs" \
        --authentication-kubeconfig="$kc" \
        --authorization-kubeconfig="$kc" \
        --profiling=false \
        --v=1
    STARTED+=(kube-scheduler)
}

NODE_NAMES=(cpu-0 cpu-1 cpu-2 gpu-h100-0 gpu-h100-1 gpu-a100-0 gpu-a100-1)

# The log of every container on the fake nodes (kwok's ClusterLogs rule in kwok.yaml points at
# it): kwok v0.8.0 serves a fixed file per rule, with no templating, so every container shows the
# same lines. CRI log format (what kwok parses): TIMESTAMP STREAM P|F TEXT. Written once, when
# missing, so that the timestamps stay put and a `kubectl logs -f` in progress sees no rewrite.
CONTAINER_LOG_LINES=3
write_container_log() {
    local f="$CONF/kwok-container.log" ts i
    [[ -s $f ]] && return 0
    ts="$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)"
    for ((i = 1; i <= CONTAINER_LOG_LINES; i++)); do
        printf '%s stdout F moon-test log line %d\n' "$ts" "$i"
    done >"$f.tmp"
    mv "$f.tmp" "$f"
}

start_kwok() {
    write_container_log
    local conf
    conf="$(<"$K8S_HERE/kwok.yaml")"
    # kwok.yaml names the log file by a placeholder: its path depends on DIR.
    [[ $conf == *@CONTAINER_LOG@* ]] || die "$K8S_HERE/kwok.yaml has no @CONTAINER_LOG@ placeholder"
    local logf="$CONF/kwok-container.log"
    printf '%s\n' "${conf//@CONTAINER_LOG@/"$logf"}" >"$CONF/kwok.yaml.tmp"
    chmod 0644 "$CONF/kwok.yaml.tmp"
    mv "$CONF/kwok.yaml.tmp" "$CONF/kwok.yaml"
    # kwok runs without node leases (see kwok.yaml); drop any left by an older setup, whose
    # holder would otherwise look like a second kwok.
    k -n kube-node-lease delete lease "${NODE_NAMES[@]}" --ignore-not-found >/dev/null
    mkdir -p "$DIR/kwok-home"
    # HOME is the state dir's, so that no ~/.kwok/kwok.yaml of the user is merged in.
    # --server-address serves healthz (HTTP) and the fake nodes' kubelet API (HTTPS with
    # --tls-cert-file; without it kwok makes up a self-signed certificate) on one port;
    # --node-port puts that port into status.daemonEndpoints of nodes kwok initializes.
    require_free_ports kwok "$KWOK_PORT"
    start_component kwok HOME="$DIR/kwok-home" -- "$KWOK_BIN/kwok" \
        --config="$CONF/kwok.yaml" \
        --kubeconfig="$CONF/kwok.kubeconfig" \
        --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
        --server-address="127.0.0.1:$KWOK_PORT" \
        --node-port="$KWOK_PORT" \
        --tls-cert-file="$PKI/kwok-serving.crt" \
        --tls-private-key-file="$PKI/kwok-serving.key" \
        --cidr="$POD_CIDR" \
        --node-ip=127.0.0.1 \
        --node-lease-duration-seconds=0
    STARTED+=(kwok)
}

# --------------------------------------------------------------------------- nodes
node_yaml() { # node_yaml NAME CPU MEMORY [GPUS PRODUCT MEMORY_MIB FAMILY]
    local name=$1 cpu=$2 mem=$3 gpus=${4:-} product=${5:-} gmem=${6:-} family=${7:-}
    local pool=cpu cc_major=9 cc_minor=0
    [[ -n $gpus ]] && pool=gpu
    [[ $family == ampere ]] && cc_major=8
    cat <<EOF
---
apiVersion: v1
kind: Node
metadata:
  name: $name
  annotations:
    kwok.x-k8s.io/node: fake
  labels:
    kubernetes.io/hostname: $name
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    type: kwok
    moon.test/pool: $pool
EOF
    if [[ -n $gpus ]]; then
        cat <<EOF
    nvidia.com/gpu.present: "true"
    nvidia.com/gpu.product: $product
    nvidia.com/gpu.memory: "$gmem"
    nvidia.com/gpu.count: "$gpus"
    nvidia.com/gpu.family: $family
    nvidia.com/gpu.compute.major: "$cc_major"
    nvidia.com/gpu.compute.minor: "$cc_minor"
EOF
    fi
    cat <<EOF
spec:
  taints:
  - key: kwok.x-k8s.io/node
    value: fake
    effect: NoSchedule
EOF
    if [[ -n $gpus ]]; then
        cat <<EOF
  - key: nvidia.com/gpu
    value: present
    effect: NoSchedule
EOF
    fi
    local res="    cpu: \"$cpu\"
    memory: $mem
    ephemeral-storage: 1Ti
    pods: \"110\""
    [[ -n $gpus ]] && res+="
    nvidia.com/gpu: \"$gpus\""
    cat <<EOF
status:
  daemonEndpoints:
    kubeletEndpoint:
      Port: $KWOK_PORT
  capacity:
$res
  allocatable:
$res
  nodeInfo:
    architecture: amd64
    operatingSystem: linux
    kubeletVersion: $KUBE_VERSION
EOF
}

make_nodes() {
    {
        for i in 0 1 2; do node_yaml "cpu-$i" 16 64Gi; done
        for i in 0 1; do node_yaml "gpu-h100-$i" 96 1024Gi 8 NVIDIA-H100-80GB-HBM3 81559 hopper; done
        for i in 0 1; do node_yaml "gpu-a100-$i" 64 512Gi 4 NVIDIA-A100-SXM4-40GB 40960 ampere; done
    } >"$CONF/nodes.yaml"
    # create, not apply: the status of a new Node is taken from the manifest (kwok keeps it);
    # nodes that exist already are left as they are.
    local out
    out="$(k create -f "$CONF/nodes.yaml" 2>&1)" || {
        if grep -v 'AlreadyExists' <<<"$out" | grep -q 'Error'; then
            die "creating nodes failed: $out"
        fi
    }
    # The apiserver reaches a node's kubelet (kwok) at its InternalIP address and
    # status.daemonEndpoints.kubeletEndpoint.Port. Nodes made by an older up.sh lack the port,
    # older kwok.yaml's node-initialize could wipe the address, and that stage only runs on nodes
    # that are not Ready: repair them here.
    local nodes name port ip
    nodes="$(k get nodes -l type=kwok -o jsonpath='{range .items[*]}{.metadata.name}{" "}{.status.daemonEndpoints.kubeletEndpoint.Port}{" "}{.status.addresses[?(@.type=="InternalIP")].address}{"\n"}{end}')"
    while read -r name port ip; do
        [[ -n $name ]] || continue
        [[ $port == "$KWOK_PORT" && $ip == 127.0.0.1 ]] && continue
        k patch node "$name" --subresource=status --type=merge -p "{\"status\":{
            \"daemonEndpoints\":{\"kubeletEndpoint\":{\"Port\":$KWOK_PORT}},
            \"addresses\":[{\"type\":\"InternalIP\",\"address\":\"127.0.0.1\"}]}}" >/dev/null
        log "node $name: kubelet at 127.0.0.1:$KWOK_PORT (was ${ip:-none}:${port:-none})"
    done <<<"$nodes"
}

nodes_ready() {
    local n
    n="$(k get nodes -o jsonpath='{range .items[*]}{.metadata.name}{" "}{.status.conditions[?(@.type=="Ready")].status}{" "}{.spec.taints[*].key}{"\n"}{end}')" || return 1
    [[ $(grep -c ' True ' <<<"$n") -ge 7 ]] || return 1
    ! grep -q 'node.kubernetes.io/not-ready\|node.kubernetes.io/unreachable' <<<"$n"
}

# --------------------------------------------------------------------------- main
make_pki
make_kubeconfigs

alive etcd || start_etcd
alive kube-apiserver || start_apiserver
wait_for "kube-apiserver ready" 180 kube-apiserver apiserver_ready
alive kube-controller-manager || start_controller_manager
alive kube-scheduler || start_scheduler
alive kwok || start_kwok

wait_for "kube-controller-manager healthy" 90 kube-controller-manager \
    curl -sfk --max-time 2 "https://127.0.0.1:$KCM_PORT/healthz"
wait_for "kube-scheduler healthy" 90 kube-scheduler \
    curl -sfk --max-time 2 "https://127.0.0.1:$SCHED_PORT/healthz"
wait_for "kwok healthy" 60 kwok curl -sf --max-time 2 "http://127.0.0.1:$KWOK_PORT/healthz"

log "applying Calico CRDs from $CALICO_CRDS"
k apply --server-side --force-conflicts -f "$CALICO_CRDS" >"$LOGS/calico-crds.log" 2>&1 ||
    { cat "$LOGS/calico-crds.log" >&2; die "applying $CALICO_CRDS failed"; }
log "applying Fluid CRDs from $FLUID_CRDS_DIR"
fluid_files=()
for crd in "${FLUID_CRDS[@]}"; do fluid_files+=(-f "$crd"); done
k apply --server-side --force-conflicts "${fluid_files[@]}" >"$LOGS/fluid-crds.log" 2>&1 ||
    { cat "$LOGS/fluid-crds.log" >&2; die "applying the Fluid CRDs failed"; }
log "applying the KEDA ScaledObject CRD from $KEDA_CRD"
k apply --server-side --force-conflicts -f "$KEDA_CRD" >"$LOGS/keda-crds.log" 2>&1 ||
    { cat "$LOGS/keda-crds.log" >&2; die "applying $KEDA_CRD failed"; }
log "applying the Multus NetworkAttachmentDefinition CRD from $MULTUS_CRD"
k apply --server-side --force-conflicts -f "$MULTUS_CRD" >"$LOGS/multus-crds.log" 2>&1 ||
    { cat "$LOGS/multus-crds.log" >&2; die "applying $MULTUS_CRD failed"; }
make_nodes
k wait --for=condition=Established --timeout=60s -f "$CALICO_CRDS" >>"$LOGS/calico-crds.log" 2>&1 ||
    { cat "$LOGS/calico-crds.log" >&2; die "the Calico CRDs did not become Established"; }
log "Calico CRDs established ($(grep -c . "$LOGS/calico-crds.log" || true) lines in $LOGS/calico-crds.log)"
k wait --for=condition=Established --timeout=60s "${fluid_files[@]}" >>"$LOGS/fluid-crds.log" 2>&1 ||
    { cat "$LOGS/fluid-crds.log" >&2; die "the Fluid CRDs did not become Established"; }
log "Fluid CRDs established"
k wait --for=condition=Established --timeout=60s -f "$KEDA_CRD" >>"$LOGS/keda-crds.log" 2>&1 ||
    { cat "$LOGS/keda-crds.log" >&2; die "the KEDA CRD did not become Established"; }
log "KEDA CRD established"
k wait --for=condition=Established --timeout=60s -f "$MULTUS_CRD" >>"$LOGS/multus-crds.log" 2>&1 ||
    { cat "$LOGS/multus-crds.log" >&2; die "the Multus CRD did not become Established"; }
log "Multus CRD established"

wait_for "7 nodes Ready and untainted by the node controller" 120 kwok nodes_ready
wait_for "service account default/default" 60 kube-controller-manager \
    k get serviceaccount default -n default

touch "$DIR/.ready"
trap - EXIT
summary

#!/usr/bin/env bash
# End-to-end check of a running test cluster (scripts/k8s/up.sh first).
#
# Usage: scripts/k8s/smoke.sh [--dir DIR] [--keep]
#
# In a namespace of its own (moon-smoke-XXXX, deleted afterwards unless --keep) it checks:
#   nodes       the 7 fake nodes are Ready, GPU nodes show nvidia.com/gpu and GFD labels
#   job-ok      a Job with 2 completions (kwok taint tolerated) reaches Complete
#   job-fail    a Job whose pod has annotation moon.test/fail="true" reaches Failed,
#               its container terminated with exit code 1
#   job-env     the same with env MOON_TEST_FAIL=1 in the first container
#   gpu         a pod asking for nvidia.com/gpu: 1 (GPU taint tolerated) runs on a gpu-* node
#   always      a pod with restartPolicy Always stays Running
#   logs        a Job's pod has logs through the apiserver and kwok's kubelet API: `kubectl logs`
#               prints "moon-test log line 1".."3", --tail=1 --timestamps the last one with its
#               time, and -f the lines at once (the stream then stays open: cut after 2 s)
#   rbac        alice (team-a) and bob (team-b) have no rights of their own; a RoleBinding for
#               group team-a lets alice list pods, bob stays forbidden; tokens authenticate too
#   calico      a projectcalico.org/v3 NetworkPolicy is accepted by the Calico CRDs
# Prints one line per check, then "smoke: N passed, N failed"; exits 1 if any failed.
#
# Options:
#   --dir DIR   state dir (default: $MOON_TEST_CLUSTER_DIR or ~/.cache/moon/cluster)
#   --keep      leave the namespace behind
#   -h, --help  show this help
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_TAG=smoke

DIR="$DEFAULT_CLUSTER_DIR"
KEEP=0
while [[ $# -gt 0 ]]; do
    common_option "$@"
    if [[ $TAKEN -gt 0 ]]; then
        shift "$TAKEN"
        continue
    fi
    case "$1" in
        --keep) KEEP=1 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
    shift
done
[[ -f $DIR/admin.kubeconfig ]] || die "no cluster in $DIR (run scripts/k8s/up.sh)"
cluster_init

KUBECTL="$K8S_BIN/kubectl"
NS="moon-smoke-$(openssl rand -hex 3)"
k() { "$KUBECTL" --kubeconfig "$DIR/admin.kubeconfig" --request-timeout=20s "$@"; }
ka() { "$KUBECTL" --kubeconfig "$DIR/alice.kubeconfig" --request-timeout=20s "$@"; }
kb() { "$KUBECTL" --kubeconfig "$DIR/bob.kubeconfig" --request-timeout=20s "$@"; }

PASSED=0 FAILED=0
check() { # check NAME CMD...: run CMD (a function), report its time
    local name=$1 t rc out
    shift
    t=$(now_ms)
    # A plain subshell with errexit of its own: inside `out=$(...) || ...` bash would ignore
    # `set -e`, and a failing step in the middle of a check would go unnoticed.
    set +e
    (
        set -e
        "$@"
    ) >"$TMP_OUT" 2>&1
    rc=$?
    set -e
    out="$(cat "$TMP_OUT")"
    if [[ $rc == 0 ]]; then
        PASSED=$((PASSED + 1))
        printf 'ok     %-9s %6s  %s\n' "$name" "$(fmt_ms $(($(now_ms) - t)))" "${out##*$'\n'}"
    else
        FAILED=$((FAILED + 1))
        printf 'FAILED %-9s %6s\n%s\n' "$name" "$(fmt_ms $(($(now_ms) - t)))" "$out" | sed '2,$s/^/    /'
    fi
}

TMP_OUT="$(mktemp)"
cleanup() {
    rm -f "$TMP_OUT"
    if [[ $KEEP == 0 ]]; then
        k delete namespace "$NS" --wait=false >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT

TOLERATE_KWOK='{key: kwok.x-k8s.io/node, operator: Exists, effect: NoSchedule}'

job_yaml() { # job_yaml NAME COMPLETIONS ANNOTATIONS ENV
    cat <<EOF
apiVersion: batch/v1
kind: Job
metadata: {name: $1, namespace: $NS}
spec:
  completions: $2
  parallelism: $2
  backoffLimit: 0
  template:
    metadata:
      annotations: {$3}
    spec:
      restartPolicy: Never
      tolerations: [$TOLERATE_KWOK]
      containers:
      - name: main
        image: registry.invalid/moon/smoke:1
        env: [$4]
        resources: {requests: {cpu: 100m, memory: 64Mi}}
EOF
}

c_nodes() {
    local out
    out="$(k get nodes -o jsonpath='{range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status},{.status.allocatable.nvidia\.com/gpu},{.metadata.labels.nvidia\.com/gpu\.product}{"\n"}{end}')"
    echo "$out"
    [[ $(grep -c '=True,' <<<"$out") == 7 ]]
    grep -qx 'gpu-h100-0=True,8,NVIDIA-H100-80GB-HBM3' <<<"$out"
    grep -qx 'gpu-a100-1=True,4,NVIDIA-A100-SXM4-40GB' <<<"$out"
    grep -qx 'cpu-2=True,,' <<<"$out"
    echo "7 nodes Ready"
}

c_job_ok() {
    job_yaml ok 2 "" "" | k apply -f - >/dev/null
    k -n "$NS" wait --for=condition=Complete job/ok --timeout=60s
    k -n "$NS" get job ok -o jsonpath='{.status.succeeded}' | grep -qx 2
    echo "job ok: Complete, 2 succeeded"
}

c_job_fail() { # c_job_fail NAME ANNOTATIONS ENV
    job_yaml "$1" 1 "$2" "$3" | k apply -f - >/dev/null
    k -n "$NS" wait --for=condition=Failed "job/$1" --timeout=60s
    local code
    code="$(k -n "$NS" get pods -l "job-name=$1" \
        -o jsonpath='{.items[0].status.phase} {.items[0].status.containerStatuses[0].state.terminated.exitCode}')"
    [[ $code == "Failed 1" ]] || { echo "pod: $code"; return 1; }
    echo "job $1: Failed, pod Failed with exit code 1"
}

c_gpu() {
    k apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata: {name: gpu, namespace: $NS}
spec:
  restartPolicy: Never
  tolerations:
  - $TOLERATE_KWOK
  - {key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}
  containers:
  - name: main
    image: registry.invalid/moon/cuda:1
    resources: {limits: {nvidia.com/gpu: 1}}
EOF
    k -n "$NS" wait --for=jsonpath='{.spec.nodeName}' pod/gpu --timeout=60s >/dev/null 2>&1 || true
    local node
    node="$(k -n "$NS" get pod gpu -o jsonpath='{.spec.nodeName}')"
    [[ $node == gpu-* ]] || { echo "scheduled onto '$node'"; return 1; }
    k -n "$NS" wait --for=jsonpath='{.status.phase}'=Succeeded pod/gpu --timeout=60s >/dev/null
    echo "gpu pod ran on $node and Succeeded"
}

c_always() {
    k apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata: {name: always, namespace: $NS}
spec:
  tolerations: [$TOLERATE_KWOK]
  containers: [{name: main, image: registry.invalid/moon/server:1}]
EOF
    k -n "$NS" wait --for=condition=Ready pod/always --timeout=60s >/dev/null
    sleep 3
    local phase
    phase="$(k -n "$NS" get pod always -o jsonpath='{.status.phase}')"
    [[ $phase == Running ]] || { echo "phase $phase after 3 s"; return 1; }
    echo "restartPolicy Always pod still Running after 3 s"
}

c_logs() {
    job_yaml logs 1 "" "" | k apply -f - >/dev/null
    k -n "$NS" wait --for=condition=Complete job/logs --timeout=60s >/dev/null
    local out rc
    out="$(k -n "$NS" logs job/logs)"
    [[ $out == "moon-test log line 1"$'\n'"moon-test log line 2"$'\n'"moon-test log line 3" ]] ||
        { echo "kubectl logs: $out"; return 1; }
    out="$(k -n "$NS" logs job/logs --tail=1 --timestamps)"
    [[ $out =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z\ moon-test\ log\ line\ 3$ ]] ||
        { echo "kubectl logs --tail=1 --timestamps: $out"; return 1; }
    # kwok never ends a follow by itself (it cannot tell that the container ended).
    rc=0
    out="$(timeout 2 "$KUBECTL" --kubeconfig "$DIR/admin.kubeconfig" -n "$NS" logs -f job/logs 2>&1)" || rc=$?
    [[ ($rc == 124 || $rc == 0) && $out == *"moon-test log line 3"* ]] ||
        { echo "kubectl logs -f (exit $rc): $out"; return 1; }
    echo "kubectl logs of a Job pod: 3 lines; --tail/--timestamps and -f work"
}

c_rbac() {
    local out
    if out="$(ka -n "$NS" get pods 2>&1)"; then echo "alice could list pods: $out"; return 1; fi
    grep -q Forbidden <<<"$out" || { echo "alice: $out"; return 1; }
    if kb -n "$NS" get pods >/dev/null 2>&1; then echo "bob could list pods"; return 1; fi
    [[ "$(ka auth whoami -o jsonpath='{.status.userInfo.groups}')" == *team-a* ]] ||
        { echo "alice is not in team-a"; return 1; }
    k -n "$NS" create rolebinding team-a-edit --clusterrole=edit --group=team-a >/dev/null
    local i
    for ((i = 0; i < 50; i++)); do ka -n "$NS" get pods >/dev/null 2>&1 && break; sleep 0.1; done
    ka -n "$NS" get pods >/dev/null
    if kb -n "$NS" get pods >/dev/null 2>&1; then echo "bob could list pods of team-a"; return 1; fi
    # The static tokens name the same users.
    local code
    code="$(curl -s -o /dev/null -w '%{http_code}' --cacert "$PKI/ca.crt" \
        -H "Authorization: Bearer $(cat "$DIR/tokens/bob.token")" "$API_URL/api/v1/namespaces/$NS/pods")"
    [[ $code == 403 ]] || { echo "bob's token: HTTP $code"; return 1; }
    code="$(curl -s -o /dev/null -w '%{http_code}' --cacert "$PKI/ca.crt" \
        -H "Authorization: Bearer $(cat "$DIR/tokens/alice.token")" "$API_URL/api/v1/namespaces/$NS/pods")"
    [[ $code == 200 ]] || { echo "alice's token: HTTP $code"; return 1; }
    echo "alice/bob forbidden by default; team-a RoleBinding admits alice only (certs and tokens)"
}

c_calico() {
    k apply -f - >/dev/null <<EOF
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: deny-egress, namespace: $NS}
spec:
  selector: all()
  types: [Egress]
EOF
    k -n "$NS" get networkpolicies.projectcalico.org deny-egress >/dev/null
    # The schema is enforced: an unknown policy type is rejected.
    if k apply -f - >/dev/null 2>&1 <<EOF; then
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: bad, namespace: $NS}
spec:
  types: [Sideways]
EOF
        echo "an invalid Calico policy was accepted"
        return 1
    fi
    echo "projectcalico.org/v3 NetworkPolicy accepted, invalid one rejected"
}

T0=$(now_ms)
k create namespace "$NS" >/dev/null
# The namespace's default service account is made by the controller manager.
for ((i = 0; i < 100; i++)); do k -n "$NS" get serviceaccount default >/dev/null 2>&1 && break; sleep 0.1; done
echo "smoke test of $DIR in namespace $NS"
check nodes c_nodes
check job-ok c_job_ok
check job-fail c_job_fail fail '"moon.test/fail": "true"' ""
check job-env c_job_fail fail-env "" '{name: MOON_TEST_FAIL, value: "1"}'
check gpu c_gpu
check always c_always
check logs c_logs
check rbac c_rbac
check calico c_calico
echo "smoke test took $(fmt_ms $(($(now_ms) - T0)))"
echo "smoke: $PASSED passed, $FAILED failed"
[[ $FAILED == 0 ]]

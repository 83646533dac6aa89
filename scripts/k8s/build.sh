#!/usr/bin/env bash
# Build the Kubernetes control plane and KWOK for the test cluster, once per version.
#
# Usage: scripts/k8s/build.sh [--force] [--k8s-only | --kwok-only]
#
# Builds, from Go modules (the module proxy is the only source):
#   kube-apiserver kube-controller-manager kube-scheduler kubectl   k8s.io/kubernetes $KUBE_VERSION
#       in ONE `go build` from the wrapper module scripts/k8s/gobuild/ (its go.mod pins
#       k8s.io/kubernetes and replaces every k8s.io/<staging> module with v0.<minor>.<patch>;
#       its go.sum is committed), CGO_ENABLED=0, -trimpath, version ldflags
#       -> $MOON_CACHE_DIR/k8s/$KUBE_VERSION/bin/
#   kwok                                                            sigs.k8s.io/kwok $KWOK_VERSION
#       -> $MOON_CACHE_DIR/kwok/$KWOK_VERSION/bin/
#
# A version whose binaries are all there is not built again: the script prints their versions
# and exits. Cold, the Kubernetes build takes minutes (4 min seen on 2 cores; 15-30 min has been
# reported on slower ones); it runs under `nice` with
# `go build -p 2`. Go's module and build caches live in $MOON_CACHE_DIR/go/{mod,build} so that
# repeated runs (CI included) reuse the downloads and the compiled packages.
#
# Options:
#   --force       rebuild even when the binaries exist
#   --k8s-only    build (or check) only the Kubernetes binaries
#   --kwok-only   build (or check) only kwok
#   -h, --help    show this help
#
# Environment:
#   MOON_CACHE_DIR   cache root (default: ~/.cache/moon)
#   MOON_BUILD_JOBS  `go build -p` (default: 2)
#
# Prints, last, one line per tool: NAME PATH VERSION.
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" # versions (from gobuild/go.mod), cache paths
LOG_TAG=build
GOBUILD_DIR="$K8S_HERE/gobuild"

FORCE=0 DO_K8S=1 DO_KWOK=1
while [[ $# -gt 0 ]]; do
    case "$1" in
        --force) FORCE=1 ;;
        --k8s-only) DO_KWOK=0 ;;
        --kwok-only) DO_K8S=0 ;;
        -h | --help) usage; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
    shift
done

CACHE_DIR="$MOON_CACHE"
JOBS="${MOON_BUILD_JOBS:-2}"
[[ -n $KUBE_VERSION ]] || die "cannot read the k8s.io/kubernetes version from $GOBUILD_DIR/go.mod"
K8S_CMDS=(kube-apiserver kube-controller-manager kube-scheduler kubectl)

command -v go >/dev/null || die "go is not on PATH (Go >= 1.24 is needed; kwok $KWOK_VERSION needs the Go its go.mod names)"

export CGO_ENABLED=0
export GOFLAGS="-buildvcs=false"
mkdir -p "$GOMODCACHE" "$GOCACHE"

now_s() { date +%s; }
fmt_secs() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

k8s_present() {
    local c
    for c in "${K8S_CMDS[@]}"; do [[ -x $K8S_BIN/$c ]] || return 1; done
}

build_k8s() {
    local minor="${KUBE_VERSION#v1.}"
    minor="${minor%%.*}"
    local tmp="$K8S_BIN.tmp.$$"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    local pkgs=() c
    for c in "${K8S_CMDS[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
    local ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION"
    ldflags+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
    ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"
    ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=$KUBE_VERSION"
    ldflags+=" -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
    log "building ${K8S_CMDS[*]} of k8s.io/kubernetes $KUBE_VERSION (go build -p $JOBS; 4-30 min cold on 2 cores)"
    log "GOMODCACHE=$GOMODCACHE GOCACHE=$GOCACHE"
    local t0
    t0=$(now_s)
    # -mod=readonly: the committed go.mod/go.sum are the truth; a build never rewrites them.
    (cd "$GOBUILD_DIR" && nice -n 10 go build -mod=readonly -p "$JOBS" -trimpath \
        -ldflags "$ldflags" -o "$tmp/" "${pkgs[@]}")
    for c in "${K8S_CMDS[@]}"; do [[ -x $tmp/$c ]] || die "go build did not produce $c"; done
    rm -rf "$K8S_BIN"
    mv "$tmp" "$K8S_BIN"
    log "built Kubernetes $KUBE_VERSION in $(fmt_secs $(($(now_s) - t0)))"
}

build_kwok() {
    local tmp="$KWOK_BIN.tmp.$$"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    log "building kwok $KWOK_VERSION (go install sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION)"
    local t0
    t0=$(now_s)
    # Outside any module, so that `go install pkg@version` resolves kwok's own go.mod.
    (cd "$tmp" && GOBIN="$tmp" nice -n 10 go install -p "$JOBS" -trimpath \
        -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v}" \
        "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION")
    [[ -x $tmp/kwok ]] || die "go install did not produce kwok"
    rm -rf "$KWOK_BIN"
    mv "$tmp" "$KWOK_BIN"
    log "built kwok $KWOK_VERSION in $(fmt_secs $(($(now_s) - t0)))"
}

# One build at a time per cache (two test runs may both find the binaries missing); the second
# then finds them built.
mkdir -p "$CACHE_DIR"
exec 8>"$CACHE_DIR/.k8s-build.lock"
if ! flock -n 8; then
    log "another build.sh is running for $CACHE_DIR: waiting for it"
    flock 8
fi
# A build started by an older build.sh (without the lock) shows as its temporary bin dir.
for tmp in "$K8S_BIN".tmp.* "$KWOK_BIN".tmp.*; do
    [[ -d $tmp ]] || continue
    pid=${tmp##*.tmp.}
    if [[ $pid =~ ^[0-9]+$ ]] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'build\.sh'; then
        log "build.sh (pid $pid) is building into $tmp: waiting for it"
        while [[ -d /proc/$pid ]]; do sleep 5; done
    fi
done

T_START=$(now_s)
if [[ $DO_K8S == 1 ]]; then
    if [[ $FORCE == 0 ]] && k8s_present; then
        log "Kubernetes $KUBE_VERSION already built in $K8S_BIN (skipping; --force rebuilds)"
    else
        build_k8s
    fi
fi
if [[ $DO_KWOK == 1 ]]; then
    if [[ $FORCE == 0 && -x $KWOK_BIN/kwok ]]; then
        log "kwok $KWOK_VERSION already built in $KWOK_BIN (skipping; --force rebuilds)"
    else
        build_kwok
    fi
fi
log "total $(fmt_secs $(($(now_s) - T_START)))"

if [[ $DO_K8S == 1 ]]; then
    "$K8S_BIN/kube-apiserver" --version >/dev/null 2>&1 || die "$K8S_BIN/kube-apiserver does not run"
    for c in kube-apiserver kube-controller-manager kube-scheduler; do
        printf '%s %s %s\n' "$c" "$K8S_BIN/$c" "$("$K8S_BIN/$c" --version 2>&1 | awk '{print $NF}')"
    done
    printf '%s %s %s\n' kubectl "$K8S_BIN/kubectl" \
        "$("$K8S_BIN/kubectl" version --client 2>/dev/null | sed -n 's/^Client Version: //p')"
fi
if [[ $DO_KWOK == 1 ]]; then
    printf '%s %s %s\n' kwok "$KWOK_BIN/kwok" "$("$KWOK_BIN/kwok" --version 2>&1 | head -n1)"
fi

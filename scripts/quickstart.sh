#!/usr/bin/env bash
# moon's quickstart, from a fresh checkout: ./scripts/quickstart.sh [--no-build] [ARGS...]
#
# 1. build: scripts/test.sh's tools and wheel tiers create the dev venv (pinned tools,
#    numpy, xgboost; .venv in the checkout links to it), build moon in release mode and
#    install its wheel there. Needs python3 (or MOON_PYTHON) with venv, and cargo. Later
#    runs reuse the venv, cargo's target dir and the wheelhouse of downloaded packages,
#    all under ~/.cache/moon (see scripts/test.sh --help), so they take seconds.
# 2. run: .venv/bin/python examples/quickstart.py ARGS..., a two-worker distributed
#    XGBoost job on this machine's local backend, its output streamed as it runs.
#
# Options:
#   --no-build   skip step 1 (moon must already be installed in .venv)
#   -h, --help   show this help
# Any other argument goes to examples/quickstart.py (see its --help): --home DIR,
# --out DIR, --rounds N, --timeout SECS.
#
# Environment: MOON_HOME (moon's state, default ~/.moon), and MOON_PYTHON and
# MOON_CACHE_DIR as scripts/test.sh reads them.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

usage() {
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
}

BUILD=1
ARGS=()
for arg in "$@"; do
    case "$arg" in
        --no-build) BUILD=0 ;;
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

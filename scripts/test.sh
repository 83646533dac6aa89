#!/usr/bin/env bash
# The project's test command: ./scripts/test.sh [--quick] [--only TIER[,TIER...]]
#
# Tiers, in order:
#   tools       .venv with the pinned tools of scripts/requirements-dev.txt
#   lint        cargo fmt --check, cargo clippy -D warnings, ruff check, ruff format --check
#   rust        cargo test --workspace
#   wheel       release build of `moon`, copied to moon-py/python/moon/bin/moon,
#               maturin wheel into target/wheels, installed into .venv
#   stubs       mypy.stubtest: moon-py/python/moon/_native.pyi against the installed moon._native
#   python      pytest tests/python -m "not tensorflow and not kubernetes"
#   kubernetes  the test cluster of scripts/k8s/up.sh (control plane built once and cached
#               under ~/.cache/moon), scripts/k8s/smoke.sh, pytest tests/python -m kubernetes,
#               then scripts/k8s/down.sh
#   tensorflow  pytest tests/python -m tensorflow (installs scripts/requirements-tf.txt first)
#
# Options:
#   --quick         skip the tensorflow tier
#   --only TIERS    run only these tiers (comma-separated, or repeat the option); the
#                   tools tier runs too when a chosen tier needs .venv (it is a no-op
#                   when .venv is current)
#   -h, --help      show this help
#
# Environment:
#   MOON_PYTHON      interpreter used to create .venv (default: python3)
#   MOON_CACHE_DIR   cache root (default: ~/.cache/moon): pip's cache is $MOON_CACHE_DIR/pip,
#                    and every downloaded wheel is kept in $MOON_CACHE_DIR/pip/wheelhouse so
#                    that a later install needs no network at all
#
# Every cargo command shares the one target/ directory at the repository root.
# The tests get MOON_TEST_BIN=<repo>/target/release/moon.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

ALL_TIERS=(tools lint rust wheel stubs python kubernetes tensorflow)

usage() {
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
}

# --------------------------------------------------------------------------- options
QUICK=0
ONLY=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --only)
            [[ $# -ge 2 ]] || { echo "error: --only needs a tier name" >&2; exit 2; }
            IFS=',' read -r -a _names <<<"$2"
            ONLY+=("${_names[@]}")
            shift
            ;;
        --only=*)
            IFS=',' read -r -a _names <<<"${1#--only=}"
            ONLY+=("${_names[@]}")
            ;;
        -h | --help) usage; exit 0 ;;
        *) echo "error: unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

for t in "${ONLY[@]+"${ONLY[@]}"}"; do
    if [[ " ${ALL_TIERS[*]} " != *" $t "* ]]; then
        echo "error: unknown tier '$t' (tiers: ${ALL_TIERS[*]})" >&2
        exit 2
    fi
done

wanted() { # wanted TIER -> is TIER selected?
    local t
    if [[ ${#ONLY[@]} -gt 0 ]]; then
        for t in "${ONLY[@]}"; do [[ $t == "$1" ]] && return 0; done
        return 1
    fi
    [[ $1 == tensorflow && $QUICK == 1 ]] && return 1
    return 0
}

# --------------------------------------------------------------------------- environment
: "${HOME:=$(getent passwd "$(id -u)" | cut -d: -f6)}"
export HOME
CACHE_DIR="${MOON_CACHE_DIR:-$HOME/.cache/moon}"
PYTHON="${MOON_PYTHON:-python3}"
VENV="$ROOT/.venv"
VPY="$VENV/bin/python"
REQ_DEV="$ROOT/scripts/requirements-dev.txt"
REQ_TF="$ROOT/scripts/requirements-tf.txt"
STAMP_DEV="$VENV/.moon-dev-stamp"
STAMP_TF="$VENV/.moon-tf-stamp"
REPORTS="$ROOT/target/test-reports"
MOON_BIN="$ROOT/target/release/moon"
BUNDLED_BIN="$ROOT/moon-py/python/moon/bin/moon"

export CARGO_TARGET_DIR="$ROOT/target"
export PIP_CACHE_DIR="$CACHE_DIR/pip"
WHEELHOUSE="$PIP_CACHE_DIR/wheelhouse"
export PIP_DISABLE_PIP_VERSION_CHECK=1
export PIP_NO_INPUT=1
export PIP_PROGRESS_BAR=off
export PYTHONDONTWRITEBYTECODE=1
export MOON_TEST_BIN="$MOON_BIN"
# pyo3's build script and maturin both see the same interpreter, so switching between
# cargo and maturin does not rebuild pyo3.
export PYO3_PYTHON="$VPY"
unset VIRTUAL_ENV PYTHONHOME || true

mkdir -p "$PIP_CACHE_DIR" "$WHEELHOUSE" "$REPORTS"
rm -f "$REPORTS"/*.xml "$REPORTS"/*.log

# --------------------------------------------------------------------------- reporting
declare -A TIER_STATUS=() TIER_TIME=()
CURRENT_TIER=""
TIER_START=0
RUN_START=0
TESTS_RAN=0
N_PASSED=0
N_FAILED=0
N_SKIPPED=0

now_us() { local t=$EPOCHREALTIME; echo "${t//[.,]/}"; }

fmt_dur() { # microseconds -> "1m02.3s" / "4.5s"
    local ds=$(($1 / 100000)) # tenths of a second
    local s=$((ds / 10)) d=$((ds % 10))
    if ((s >= 60)); then
        printf '%dm%02d.%ds' $((s / 60)) $((s % 60)) "$d"
    else
        printf '%d.%ds' "$s" "$d"
    fi
}

if [[ -t 1 ]]; then BOLD=$'\033[1m' DIM=$'\033[2m' RESET=$'\033[0m'; else BOLD="" DIM="" RESET=""; fi
say() { printf '\n%s==> %s%s\n' "$BOLD" "$*" "$RESET"; }
step() { printf '%s--- %s%s\n' "$DIM" "$*" "$RESET"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

run_tier() { # run_tier NAME FUNCTION: errexit stays in force inside FUNCTION
    CURRENT_TIER=$1
    say "tier: $1"
    TIER_START=$(now_us)
    "$2"
    TIER_STATUS[$1]=ok
    TIER_TIME[$1]=$(($(now_us) - TIER_START))
    CURRENT_TIER=""
}

skip_tier() { TIER_STATUS[$1]=skipped; }

summary() {
    local rc=$?
    trap - EXIT
    set +e
    if [[ -n $CURRENT_TIER ]]; then
        TIER_STATUS[$CURRENT_TIER]=FAILED
        TIER_TIME[$CURRENT_TIER]=$(($(now_us) - TIER_START))
    fi
    say "summary"
    printf '  %-11s %-8s %10s\n' tier status time
    local name t
    for name in "${ALL_TIERS[@]}"; do
        t=${TIER_TIME[$name]:-}
        [[ -n $t ]] && t=$(fmt_dur "$t") || t=-
        printf '  %-11s %-8s %10s\n' "$name" "${TIER_STATUS[$name]:-not run}" "$t"
    done
    printf '  %-11s %-8s %10s\n' total "" "$(fmt_dur $(($(now_us) - RUN_START)))"
    if [[ -n $CURRENT_TIER ]]; then
        printf '\nFAILED in tier "%s" (exit %d)\n' "$CURRENT_TIER" "$rc"
    elif [[ $rc -ne 0 ]]; then
        printf '\nFAILED (exit %d)\n' "$rc"
    fi
    if [[ $TESTS_RAN == 1 ]]; then
        printf '\ntests: %d passed, %d failed, %d skipped\n' "$N_PASSED" "$N_FAILED" "$N_SKIPPED"
    fi
    exit "$rc"
}

count_cargo() { # count_cargo LOG: add up cargo's "test result:" lines
    local p f i
    read -r p f i < <(sed -n 's/^test result: [A-Za-z]*\. \([0-9]*\) passed; \([0-9]*\) failed; \([0-9]*\) ignored.*/\1 \2 \3/p' "$1" |
        awk '{p+=$1; f+=$2; i+=$3} END {print p+0, f+0, i+0}')
    N_PASSED=$((N_PASSED + p))
    N_FAILED=$((N_FAILED + f))
    N_SKIPPED=$((N_SKIPPED + i))
    TESTS_RAN=1
}

count_junit() { # count_junit XML: add up a pytest junit report
    [[ -f $1 ]] || return 0
    local p f s
    read -r p f s < <("$VPY" - "$1" <<'EOF'
import sys
import xml.etree.ElementTree as ET

root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
t = f = e = s = 0
for su in suites:
    t += int(su.get("tests", 0))
    f += int(su.get("failures", 0))
    e += int(su.get("errors", 0))
    s += int(su.get("skipped", 0))
print(t - f - e - s, f + e, s)
EOF
)
    N_PASSED=$((N_PASSED + p))
    N_FAILED=$((N_FAILED + f))
    N_SKIPPED=$((N_SKIPPED + s))
    TESTS_RAN=1
}

# --------------------------------------------------------------------------- helpers
file_hash() { cat "$@" | sha256sum | cut -d' ' -f1; }

python_id() { "$1" -c 'import sys; print(sys.implementation.name, sys.version.split()[0], sys.prefix)'; }

existing_paths() { # print those of the given paths that exist
    local p
    for p in "$@"; do [[ -e $p ]] && printf '%s\n' "$p"; done
    return 0
}

# pip_install_cached ARGS...: `pip install ARGS` from the wheelhouse alone when it has
# everything; otherwise download what is missing into it first. (The package index here
# sends no caching headers, so pip's own HTTP cache keeps nothing between runs.)
pip_install_cached() {
    local log="$REPORTS/pip-offline.log"
    if "$VPY" -m pip install --no-index --find-links "$WHEELHOUSE" "$@" >"$log" 2>&1; then
        grep -E '^Successfully installed' "$log" || true
        step "installed from the wheelhouse ($WHEELHOUSE)"
        return 0
    fi
    step "fetching missing packages into $WHEELHOUSE"
    "$VPY" -m pip download --dest "$WHEELHOUSE" --find-links "$WHEELHOUSE" "$@"
    if ! "$VPY" -m pip install --no-index --find-links "$WHEELHOUSE" "$@"; then
        # e.g. an sdist whose build requirements are not in the wheelhouse
        step "offline install failed; installing from the index"
        "$VPY" -m pip install --find-links "$WHEELHOUSE" "$@"
    fi
}

require_venv() {
    [[ -x $VPY ]] || die ".venv is missing; run ./scripts/test.sh --only tools"
}

require_wheel() {
    require_venv
    "$VPY" -c 'import moon._native' 2>/dev/null ||
        die "moon._native is not installed in .venv; run ./scripts/test.sh --only wheel"
}

# --------------------------------------------------------------------------- tiers
tier_tools() {
    command -v "$PYTHON" >/dev/null || die "$PYTHON not found (set MOON_PYTHON)"
    command -v cargo >/dev/null || die "cargo not found on PATH"

    # A venv whose interpreter went away (or changed) is rebuilt from scratch.
    local base_id
    base_id="$("$PYTHON" -c 'import sys; print(sys.implementation.name, sys.version.split()[0])')"
    if [[ -e $VENV ]] && ! { [[ -x $VPY ]] && [[ "$(python_id "$VPY" 2>/dev/null | cut -d' ' -f1,2)" == "$base_id" ]]; }; then
        step "recreating .venv (interpreter changed or broken)"
        rm -rf "$VENV"
    fi
    if [[ ! -x $VPY ]]; then
        step "creating .venv with $("$PYTHON" -c 'import sys; print(sys.executable)') ($base_id)"
        "$PYTHON" -m venv "$VENV" || die "'$PYTHON -m venv' failed (is the venv/ensurepip module installed?)"
    fi

    local want
    want="$(file_hash "$REQ_DEV")-$base_id"
    if [[ -f $STAMP_DEV && "$(cat "$STAMP_DEV")" == "$want" ]]; then
        step "tools up to date ($(basename "$REQ_DEV") unchanged)"
    else
        step "pip install -r scripts/requirements-dev.txt (cache: $PIP_CACHE_DIR)"
        rm -f "$STAMP_DEV" "$STAMP_TF"
        pip_install_cached -r "$REQ_DEV"
        echo "$want" >"$STAMP_DEV"
    fi
    "$VENV/bin/ruff" --version
    "$VENV/bin/maturin" --version
    "$VPY" -m mypy --version
    "$VPY" -m pytest --version
}

tier_lint() {
    cargo fmt --version >/dev/null 2>&1 || die "rustfmt is not installed (rustup component add rustfmt)"
    cargo clippy --version >/dev/null 2>&1 || die "clippy is not installed (rustup component add clippy)"

    step "cargo fmt --all --check"
    cargo fmt --all --check
    step "cargo clippy --workspace --all-targets -- -D warnings"
    cargo clippy --workspace --all-targets -- -D warnings

    local py_paths=()
    mapfile -t py_paths < <(existing_paths moon-py/python tests examples benchmarks scripts)
    if [[ ${#py_paths[@]} -gt 0 ]]; then
        step "ruff check ${py_paths[*]}"
        "$VENV/bin/ruff" check --no-fix "${py_paths[@]}"
        step "ruff format --check ${py_paths[*]}"
        "$VENV/bin/ruff" format --check "${py_paths[@]}"
    fi
}

tier_rust() {
    step "cargo test --workspace"
    local log="$REPORTS/rust.log" rc=0
    cargo test --workspace 2>&1 | tee "$log" || rc=$?
    count_cargo "$log"
    return "$rc"
}

tier_wheel() {
    step "cargo build --release -p moon-cli"
    cargo build --release -p moon-cli
    [[ -x $MOON_BIN ]] || die "cargo did not produce $MOON_BIN"
    step "copy target/release/moon -> moon-py/python/moon/bin/moon"
    install -D -m 0755 "$MOON_BIN" "$BUNDLED_BIN"

    step "maturin build --release -m moon-py/Cargo.toml -o target/wheels"
    mkdir -p "$ROOT/target/wheels"
    rm -f "$ROOT"/target/wheels/*.whl
    "$VENV/bin/maturin" build --release -m moon-py/Cargo.toml -o "$ROOT/target/wheels" -i "$VPY"
    local wheels=("$ROOT"/target/wheels/*.whl)
    [[ ${#wheels[@]} -eq 1 && -f ${wheels[0]} ]] ||
        die "expected exactly one wheel in target/wheels, found: ${wheels[*]}"
    step "pip install --force-reinstall --no-deps $(basename "${wheels[0]}")"
    "$VPY" -m pip install --force-reinstall --no-deps "${wheels[0]}"
    # The installed package must ship the CLI.
    "$VPY" - <<'EOF'
import os, pathlib, sys
import moon
pkg = pathlib.Path(moon.__file__).resolve().parent
exe = pkg / "bin" / "moon"
if not (exe.is_file() and os.access(exe, os.X_OK)):
    sys.exit(f"the installed wheel lacks an executable {exe}")
print(f"installed moon from {pkg}")
EOF
}

tier_stubs() {
    require_wheel
    local stub="$ROOT/moon-py/python/moon/_native.pyi"
    [[ -f $stub ]] || die "stub $stub is missing"
    local args=(moon._native)
    [[ -f $ROOT/scripts/stubtest-allowlist.txt ]] && args+=(--allowlist "$ROOT/scripts/stubtest-allowlist.txt")
    step "python -m mypy.stubtest ${args[*]} (stub: moon-py/python/moon/_native.pyi)"
    # Run outside the tree so `moon` imports from .venv; mypy reads the stub from the source tree.
    (cd "$REPORTS" && MYPYPATH="$ROOT/moon-py/python" "$VPY" -m mypy.stubtest "${args[@]}")
}

run_pytest() { # run_pytest NAME MARKEXPR
    local name=$1 mark=$2 rc=0
    [[ -d $ROOT/tests/python ]] || die "tests/python does not exist"
    step "pytest tests/python -m \"$mark\""
    "$VPY" -m pytest tests/python -m "$mark" --junitxml="$REPORTS/$name.xml" || rc=$?
    count_junit "$REPORTS/$name.xml"
    if [[ $rc -eq 5 ]]; then
        echo "error: pytest collected no tests for -m \"$mark\" (exit 5)" >&2
        return 1
    fi
    return "$rc"
}

tier_python() {
    require_wheel
    run_pytest python "not tensorflow and not kubernetes"
}

tier_kubernetes() {
    require_wheel
    local cluster="$ROOT/target/test-cluster" rc=0
    step "scripts/k8s/up.sh --dir target/test-cluster (a fresh cluster for this run)"
    "$ROOT/scripts/k8s/down.sh" --dir "$cluster" --purge >/dev/null 2>&1 || true
    # Ports of its own, so that a developer's cluster on the default ports can keep running.
    MOON_TEST_APISERVER_PORT=27443 MOON_TEST_ETCD_PORT=27791 MOON_TEST_ETCD_PEER_PORT=27792 \
        MOON_TEST_KCM_PORT=27457 MOON_TEST_SCHEDULER_PORT=27459 MOON_TEST_KWOK_PORT=27480 \
        "$ROOT/scripts/k8s/up.sh" --dir "$cluster" --quiet
    # shellcheck source=/dev/null
    source "$cluster/env.sh"
    MOON_TEST_KUBECTL="$(bash -c 'source "$1/scripts/k8s/lib.sh" && echo "$K8S_BIN/kubectl"' _ "$ROOT")"
    export MOON_TEST_KUBECTL
    step "scripts/k8s/smoke.sh: nodes, jobs completing and failing, GPU placement, RBAC, Calico, pod logs"
    "$ROOT/scripts/k8s/smoke.sh" --dir "$cluster" || rc=$?
    if [[ $rc -eq 0 ]]; then run_pytest kubernetes "kubernetes" || rc=$?; fi
    step "scripts/k8s/down.sh --dir target/test-cluster --purge"
    "$ROOT/scripts/k8s/down.sh" --dir "$cluster" --purge
    return "$rc"
}

tier_tensorflow() {
    require_wheel
    local want
    want="$(file_hash "$REQ_DEV" "$REQ_TF")-$(python_id "$VPY" | cut -d' ' -f1,2)"
    if [[ -f $STAMP_TF && "$(cat "$STAMP_TF")" == "$want" ]]; then
        step "tensorflow requirements up to date"
    else
        step "pip install -r scripts/requirements-tf.txt (cache: $PIP_CACHE_DIR)"
        # Lines marked `# no-deps` are installed without their dependencies (tf-keras would
        # otherwise pull in the full `tensorflow` build beside tensorflow-cpu).
        local deps="$VENV/.moon-tf-deps.txt" nodeps="$VENV/.moon-tf-nodeps.txt"
        grep -v -- '#.*no-deps' "$REQ_TF" >"$deps" || true
        grep -- '#.*no-deps' "$REQ_TF" | grep -v '^[[:space:]]*#' | sed 's/[[:space:]]*#.*//' >"$nodeps" || true
        pip_install_cached -r "$REQ_DEV" -r "$deps"
        if [[ -s $nodeps ]]; then
            pip_install_cached --no-deps -r "$nodeps"
        fi
        echo "$want" >"$STAMP_TF"
    fi
    TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}" run_pytest tensorflow "tensorflow"
}

# --------------------------------------------------------------------------- main
RUN_START=$(now_us)
trap summary EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Every tier but tools itself needs .venv: the Python tools, and PYO3_PYTHON for any cargo
# command that builds pyo3.
needs_venv=0
for t in lint rust wheel stubs python kubernetes tensorflow; do wanted "$t" && needs_venv=1; done

run_tools=0
if wanted tools || [[ $needs_venv == 1 ]]; then run_tools=1; fi
for t in "${ALL_TIERS[@]}"; do
    if [[ $t == tools ]]; then [[ $run_tools == 1 ]] || skip_tier tools; else wanted "$t" || skip_tier "$t"; fi
done

[[ $run_tools == 1 ]] && run_tier tools tier_tools
for t in lint rust wheel stubs python kubernetes tensorflow; do
    if wanted "$t"; then run_tier "$t" "tier_$t"; fi
done

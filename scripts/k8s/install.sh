#!/usr/bin/env bash
# Install the system packages the test cluster needs, when missing.
#
# Usage: scripts/k8s/install.sh
#
#   etcd      Debian `etcd-server` (etcd 3.4.23 on Debian 12); the package's own systemd
#             service is not used (scripts/k8s/up.sh runs etcd itself, on loopback)
#   openssl   Debian `openssl` (certificates of the test cluster)
#   curl      Debian `curl` (readiness probes)
#
# Runs `apt-get update` first only when something has to be installed. Needs root (or sudo).
# Exits 0 without touching apt when everything is present.
set -euo pipefail

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

case "${1:-}" in
    -h | --help) usage; exit 0 ;;
    "") ;;
    *) die "unknown argument: $1 (see --help)" ;;
esac

missing=()
command -v etcd >/dev/null || missing+=(etcd-server)
command -v openssl >/dev/null || missing+=(openssl)
command -v curl >/dev/null || missing+=(curl)

if [[ ${#missing[@]} -gt 0 ]]; then
    SUDO=()
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null || die "need root to install ${missing[*]}"
        SUDO=(sudo)
    fi
    command -v apt-get >/dev/null || die "apt-get not found; install ${missing[*]} by hand"
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "${SUDO[@]}" apt-get update -qq
    # policy-rc.d keeps the package from starting its own etcd service during the install
    # (the test cluster runs etcd itself on unusual ports).
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

# Debian's etcd-server may still have started its service (systemd hosts without policy-rc.d
# support); it would hold 2379/2380 on loopback but the test cluster uses other ports anyway.
echo "etcd:    $(command -v etcd) $(etcd --version 2>/dev/null | sed -n 's/^etcd Version: //p')"
echo "openssl: $(command -v openssl) $(openssl version | awk '{print $2}')"
echo "curl:    $(command -v curl) $(curl --version | awk 'NR==1{print $2}')"

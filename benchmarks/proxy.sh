#!/usr/bin/env bash
# moon's HTTP proxy against nginx on the same replicas: throughput and CPU per request, added
# latency, one slow replica among four, a replica killed under load, and cold start from zero
# (see benchmarks/proxy.py for the method).
#
# Usage: benchmarks/proxy.sh [--rounds N] [--duration SECONDS] [--quick]
#
# Installs Debian's nginx, wrk and hey when they are missing (needs root or sudo), builds
# `moon-proxy` and `bench-replica` in release mode, and prints the ratios of medians, moon /
# nginx, on its last line. Exits 1 when a request through moon failed.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"

case "${1:-}" in
    -h | --help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac

missing=()
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || missing+=(nginx-light)
command -v wrk >/dev/null || missing+=(wrk)
command -v hey >/dev/null || missing+=(hey)
if [[ ${#missing[@]} -gt 0 ]]; then
    SUDO=()
    [[ $(id -u) -eq 0 ]] || SUDO=(sudo)
    echo "proxy benchmark: installing ${missing[*]} from Debian" >&2
    "${SUDO[@]}" apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
export PATH="$PATH:/usr/sbin"

cd "$ROOT"
cargo build --quiet --release -p moon-net --bin moon-proxy -p moon-proxy-bench --bin bench-replica
target="${CARGO_TARGET_DIR:-$ROOT/target}/release"
exec python3 -u "$HERE/proxy.py" --proxy "$target/moon-proxy" --replica "$target/bench-replica" "$@"

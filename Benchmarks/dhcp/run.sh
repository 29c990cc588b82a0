#!/usr/bin/env bash
# DHCP benchmark: Kiln's server against dnsmasq serving the same pool, in the same run, in network namespaces
# created here and always removed. The load generator (kiln-dhcp-bench load) runs N distinct MACs through
# DISCOVER/OFFER/REQUEST/ACK over one socket with W transactions in flight and prints one JSON line per run.
#
#   Benchmarks/dhcp/run.sh [clients=1000] [window=32] [rounds=2]
#
# Like with like: both servers answer the same broadcast-flagged requests, log no per-packet lines
# (Kiln --quiet, dnsmasq --quiet-dhcp), and write a lease file (Kiln at most once a second, dnsmasq on change).
# dnsmasq runs with --no-ping (the comparison), then once with its default ping check, reported separately.
set -euo pipefail
clients="${1:-1000}"; window="${2:-32}"; rounds="${3:-2}"
here="$(cd "$(dirname "$0")" && pwd)"
command -v dnsmasq >/dev/null || { echo "run.sh: dnsmasq missing (Scripts/install-deps installs dnsmasq-base)" >&2; exit 2; }
pkg="$("$here/overlay.sh")"
swift build -c release --package-path "$pkg" --scratch-path "$pkg/.build" --product kiln-dhcp-bench >&2
bin="$pkg/.build/release/kiln-dhcp-bench"

id=$$; S="kdbs$id"; C="kdbc$id"; SIF="kdbs$id"; CIF="kdbc$id"
# Lease files on tmpfs by default, as in the appliance (its /var/lib/kiln lives in the initramfs);
# LEASE_DIR=/some/disk/dir measures both servers with fsync on a real disk instead.
work="$(mktemp -d "${LEASE_DIR:-/dev/shm}/kiln-dhcp-bench.XXXXXX")"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill -TERM "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  ip netns del "$S" 2>/dev/null || true; ip netns del "$C" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$S"; ip netns add "$C"
ip link add "$SIF" netns "$S" type veth peer name "$CIF" netns "$C"
ip -n "$S" addr add 10.88.0.1/16 dev "$SIF"; ip -n "$C" addr add 10.88.255.254/16 dev "$CIF"
for ns in "$S" "$C"; do ip -n "$ns" link set lo up; done
ip -n "$S" link set "$SIF" up; ip -n "$C" link set "$CIF" up
pool_lo=10.88.0.10; pool_hi=10.88.15.250

cat > "$work/dhcp.json" <<JSON
{"version":1,"interfaces":[{"name":"$SIF","address":"10.88.0.1/16",
 "spec":{"pool":"$pool_lo-$pool_hi","router":"10.88.0.1","dns":["10.88.0.1"],"lease":3600},
 "leaseFile":"$work/kiln.leases","offerSeconds":30,"declineSeconds":600}]}
JSON

stop_server() { kill -TERM "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""; }
load() { ip netns exec "$C" "$bin" load --interface "$CIF" --clients "$1" --window "$window" --label "$2" --deadline 180 || true; }
wait_bound() { for _ in $(seq 50); do ip netns exec "$S" ss -Hulpn 'sport = :67' | grep -q . && return; sleep 0.1; done; }

run_kiln() {
  rm -f "$work/kiln.leases"
  ip netns exec "$S" "$bin" serve "$work/dhcp.json" --quiet & server_pid=$!
  wait_bound; load "$clients" kiln; stop_server
}
run_dnsmasq() {  # $1: extra flag (--no-ping or empty), $2: label, $3: clients
  rm -f "$work/dnsmasq.leases"; : > "$work/dnsmasq.leases"
  ip netns exec "$S" dnsmasq --keep-in-foreground --conf-file=/dev/null --port=0 --user=root --pid-file= \
    --interface="$SIF" --bind-interfaces --dhcp-authoritative --quiet-dhcp --dhcp-lease-max=100000 \
    --dhcp-range="$pool_lo,$pool_hi,255.255.0.0,1h" --dhcp-option=3,10.88.0.1 --dhcp-option=6,10.88.0.1 \
    --dhcp-leasefile="$work/dnsmasq.leases" $1 & server_pid=$!
  wait_bound; load "$3" "$2"; stop_server
}

echo "# $clients clients, window $window, leases in $(df -T "$work" | awk 'NR==2{print $2}'), $(nproc) CPUs, $(dnsmasq --version | head -1 | cut -d' ' -f1-3)"
for r in $(seq "$rounds"); do
  run_kiln
  run_dnsmasq --no-ping dnsmasq-no-ping "$clients"
done
run_dnsmasq "" dnsmasq-ping "${PING_CLIENTS:-$clients}"

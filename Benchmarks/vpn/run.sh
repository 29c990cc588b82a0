#!/bin/bash
# VPN benchmark: iperf3 (TCP) through a Kiln↔Kiln tunnel and through a wireguard-go↔wireguard-go tunnel, each
# between two fresh namespaces joined by a veth pair, in one run. Prints throughput, CPU seconds per Gbit of
# the two VPN processes together (utime+stime from /proc), and the ratios Kiln / wireguard-go.
# Needs root, wireguard-go, wg, iperf3. Target: Kiln >= 1.5x wireguard-go throughput.
#
# Usage: Benchmarks/vpn/run.sh [SECONDS]   (default 5 s per iperf3 run)
#        KILN_VPN_BENCH=/path/to/kiln-vpn-bench Benchmarks/vpn/run.sh   (measure that build instead of this checkout)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DURATION=${1:-5}
WORK=$(mktemp -d /tmp/kiln-vpn-bench.XXXXXX)
TAG="kvb$$"
NS=()
PIDS=()
cleanup() {
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
    for n in "${NS[@]:-}"; do [ -n "$n" ] && ip netns del "$n" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

# --- Build the bench executable in a throwaway package that links swift-crypto from the main checkout, or take
# an already built one from KILN_VPN_BENCH (e.g. another commit's, to compare two builds against one baseline). ---
if [ -n "${KILN_VPN_BENCH:-}" ]; then
BIN=$KILN_VPN_BENCH
else
[ -d "$ROOT/.build/checkouts/swift-crypto" ] || (cd "$ROOT" && swift package resolve >&2)
# Kept under .build so the release build of BoringSSL is reused between runs.
PKG="$ROOT/.build/vpn-bench-package"; rm -rf "$PKG/Sources"; mkdir -p "$PKG/Sources"
for d in KilnConfig KilnSystem CKilnShims KilnVPN; do ln -s "$ROOT/Sources/$d" "$PKG/Sources/$d"; done
ln -s "$ROOT/Benchmarks/vpn/Sources/kiln-vpn-bench" "$PKG/Sources/kiln-vpn-bench"
cat > "$PKG/Package.swift" <<PKGEOF
// swift-tools-version:6.0
import PackageDescription
let package = Package(name: "VPNBench", dependencies: [.package(path: "$ROOT/.build/checkouts/swift-crypto")], targets: [
    .target(name: "CKilnShims"),
    .target(name: "KilnConfig"),
    .target(name: "KilnSystem", dependencies: ["CKilnShims"]),
    .target(name: "KilnVPN", dependencies: ["KilnConfig", "KilnSystem", "CKilnShims", .product(name: "Crypto", package: "swift-crypto")]),
    .executableTarget(name: "kiln-vpn-bench", dependencies: ["KilnVPN", "KilnConfig"]),
])
PKGEOF
# swift-crypto then takes swift-asn1 from the sibling checkout instead of fetching it.
export SWIFTCI_USE_LOCAL_DEPS=1
(cd "$PKG" && swift build -c release --static-swift-stdlib --product kiln-vpn-bench >&2)
BIN="$PKG/.build/release/kiln-vpn-bench"
fi
echo "kiln-vpn-bench: $(stat -c %s "$BIN") bytes (release, static Swift runtime)"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

# topology NAME: namespaces ${NAME}a / ${NAME}b, veth 192.0.2.1 <-> 192.0.2.2
topology() {
    local a="$TAG$1a" b="$TAG$1b"
    ip netns add "$a"; NS+=("$a"); ip netns add "$b"; NS+=("$b")
    ip -n "$a" link set lo up; ip -n "$b" link set lo up
    ip -n "$a" link add veth0 type veth peer name veth1 netns "$b"
    ip -n "$a" addr add 192.0.2.1/24 dev veth0; ip -n "$b" addr add 192.0.2.2/24 dev veth1
    ip -n "$a" link set veth0 up; ip -n "$b" link set veth1 up
}

# measure NAME PID1 PID2: iperf3 a -> b through 10.77.0.1 -> 10.77.0.2; prints "gbps cpu_s_per_gbit"
measure() {
    local a="$TAG$1a" b="$TAG$1b" p1=$2 p2=$3
    ip netns exec "$a" ping -c 3 -i 0.2 -W 2 10.77.0.2 >/dev/null || { echo "tunnel $1 does not pass ping" >&2; exit 1; }
    ip netns exec "$b" iperf3 -s -1 -B 10.77.0.2 >/dev/null 2>&1 &
    local server=$!; PIDS+=("$server"); sleep 0.5
    local c0=$(( $(cpu_ticks "$p1") + $(cpu_ticks "$p2") ))
    ip netns exec "$a" iperf3 -c 10.77.0.2 -t "$DURATION" -J > "$WORK/$1.json"
    local c1=$(( $(cpu_ticks "$p1") + $(cpu_ticks "$p2") ))
    wait "$server" || true
    python3 - "$WORK/$1.json" "$(( c1 - c0 ))" "$HZ" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))["end"]["sum_received"]
gbit = d["bytes"] * 8 / 1e9
cpu = int(sys.argv[2]) / int(sys.argv[3])
print(f"{gbit / d['seconds']:.3f} {cpu / gbit if gbit else float('inf'):.3f}")
PY
}

KA=$(wg genkey); KB=$(wg genkey); PA=$(echo "$KA" | wg pubkey); PB=$(echo "$KB" | wg pubkey)

# --- Kiln <-> Kiln ---
topology k
for side in a b; do
    if [ $side = a ]; then key=$KA; peer=$PB; me=10.77.0.1; other=10.77.0.2; ep=192.0.2.2; else key=$KB; peer=$PA; me=10.77.0.2; other=10.77.0.1; ep=192.0.2.1; fi
    cat > "$WORK/kiln-$side.json" <<CFG
{"interface": "kvpn0", "privateKey": "$key", "listenPort": 51820, "address": ["$me/24"],
 "peers": [{"publicKey": "$peer", "endpoint": "$ep:51820", "allowedIPs": ["$other/32"]}]}
CFG
    mkfifo "$WORK/ready-$side"
    ip netns exec "${TAG}k$side" "$BIN" "$WORK/kiln-$side.json" > "$WORK/ready-$side" &
    PIDS+=("$!"); eval "KILN_$side=$!"
    head -1 "$WORK/ready-$side" >/dev/null
    ip -n "${TAG}k$side" addr add "$me/24" dev kvpn0
    ip -n "${TAG}k$side" link set kvpn0 mtu 1420 up
done
read -r KILN_GBPS KILN_CPU < <(measure k "$KILN_a" "$KILN_b")

# --- wireguard-go <-> wireguard-go (names differ: the UAPI sockets share /var/run/wireguard) ---
topology w
for side in a b; do
    if [ $side = a ]; then key=$KA; peer=$PB; me=10.77.0.1; other=10.77.0.2; ep=192.0.2.2; else key=$KB; peer=$PA; me=10.77.0.2; other=10.77.0.1; ep=192.0.2.1; fi
    WG_PROCESS_FOREGROUND=1 ip netns exec "${TAG}w$side" wireguard-go -f "wg$side" >/dev/null 2>&1 &
    PIDS+=("$!"); eval "WG_$side=$!"
    for _ in $(seq 50); do ip -n "${TAG}w$side" link show "wg$side" >/dev/null 2>&1 && break; sleep 0.1; done
    echo "$key" > "$WORK/key-$side"
    ip netns exec "${TAG}w$side" wg set "wg$side" listen-port 51820 private-key "$WORK/key-$side" \
        peer "$peer" endpoint "$ep:51820" allowed-ips "$other/32"
    ip -n "${TAG}w$side" addr add "$me/24" dev "wg$side"
    ip -n "${TAG}w$side" link set "wg$side" mtu 1420 up
done
read -r WG_GBPS WG_CPU < <(measure w "$WG_a" "$WG_b")

echo "iperf3 TCP, ${DURATION} s, veth between two namespaces, MTU 1420 tunnels; load average $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
printf "%-28s %10s %18s\n" "tunnel" "Gbit/s" "CPU s per Gbit"
printf "%-28s %10s %18s\n" "Kiln <-> Kiln" "$KILN_GBPS" "$KILN_CPU"
printf "%-28s %10s %18s\n" "wireguard-go <-> wireguard-go" "$WG_GBPS" "$WG_CPU"
python3 -c "
k, w, kc, wc = $KILN_GBPS, $WG_GBPS, $KILN_CPU, $WG_CPU
print(f'ratio Kiln / wireguard-go: throughput {k / w:.2f}x, CPU per Gbit {kc / wc:.2f}x')"

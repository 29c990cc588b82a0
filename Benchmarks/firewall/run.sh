#!/bin/bash
# Firewall benchmark (issue 5). Needs root (network namespaces), nft, iperf3, /usr/bin/time, python3.
#
# 1. Apply time and peak memory of Kiln's ruleset with 10k and 100k addresses in an interval set, applied
#    through KilnFirewall (libnftables in-process), against `nft -f` of the same text and `nft -f` of the
#    equivalent linear ruleset (one rule per address), each in a fresh namespace.
# 2. Forwarding rate (iperf3 UDP, 64-byte payloads) through a router namespace with no ruleset, Kiln's
#    ruleset with an empty set, with 100k entries, and linear rulesets; ratios against the empty set.
# Targets (issue 5): 100k entries applied <= 1.0 s and <= 150 MB; forwarding with 100k >= 0.9x none.
#
# Usage: Benchmarks/firewall/run.sh [--quick]   (--quick: 2 s iperf runs, skips the 100k linear apply)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
QUICK=0; [ "${1:-}" = "--quick" ] && QUICK=1
SECONDS_PER_RUN=$([ $QUICK = 1 ] && echo 2 || echo 5)
WORK=$(mktemp -d /tmp/kiln-fw-bench.XXXXXX)
TAG="kfwb$$"
NS=()
PIDS=()
cleanup() {
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
    for n in "${NS[@]:-}"; do [ -n "$n" ] && ip netns del "$n" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
newns() { ip netns add "$1"; NS+=("$1"); ip -n "$1" link set lo up; }

# --- Build the bench executable in a throwaway package (no change to the main Package.swift). ---
PKG="$WORK/pkg"; mkdir -p "$PKG/Sources"
for d in KilnConfig KilnFirewall CNftables; do ln -s "$ROOT/Sources/$d" "$PKG/Sources/$d"; done
ln -s "$ROOT/Benchmarks/firewall/Sources/kiln-firewall-bench" "$PKG/Sources/kiln-firewall-bench"
cat > "$PKG/Package.swift" <<'PKGEOF'
// swift-tools-version:6.0
import PackageDescription
let package = Package(name: "FirewallBench", targets: [
    .systemLibrary(name: "CNftables", pkgConfig: "libnftables"),
    .target(name: "KilnConfig"),
    .target(name: "KilnFirewall", dependencies: ["KilnConfig", "CNftables"]),
    .executableTarget(name: "kiln-firewall-bench", dependencies: ["KilnFirewall"]),
])
PKGEOF
SCRATCH="${KILN_BENCH_SCRATCH:-$ROOT/.build-fw-bench}"
echo "building kiln-firewall-bench (release)..." >&2
swift build -c release --package-path "$PKG" --scratch-path "$SCRATCH" >&2
BENCH="$SCRATCH/release/kiln-firewall-bench"

# --- 1. Apply time and peak memory. ---
measure() {  # measure <label> <command...>: fresh namespace, prints "label wall_s peak_MB [inner]"
    local label=$1; shift
    local ns="${TAG}a"; newns "$ns"
    local out
    out=$( { /usr/bin/time -f "TIME %e %M" ip netns exec "$ns" "$@" ; } 2>&1 ) || { echo "$label FAILED: $out"; ip netns del "$ns"; return; }
    ip netns del "$ns"; unset 'NS[${#NS[@]}-1]'
    local wall kb inner
    wall=$(echo "$out" | awk '/^TIME/ {print $2}'); kb=$(echo "$out" | awk '/^TIME/ {print $3}')
    inner=$(echo "$out" | grep -o 'apply_ms=[0-9]*' || true)
    printf "%-34s %8.2f s %8.1f MB  %s\n" "$label" "$wall" "$(echo "$kb/1024" | bc -l)" "$inner"
    echo "$label $wall $kb" >> "$WORK/apply.txt"
}

echo "== apply: wall time and peak RSS (fresh namespace each)"
for n in 10000 100000; do
    "$BENCH" gen set $n "$WORK/set-$n.nft" | sed "s/^/  set $n: /"
    "$BENCH" gen linear $n "$WORK/linear-$n.nft" | sed "s/^/  linear $n: /"
done
"$BENCH" gen set 0 "$WORK/set-0.nft" >/dev/null
for n in 10000 100000; do
    measure "kiln set $n (KilnFirewall)" "$BENCH" apply "$WORK/set-$n.nft"
    measure "kiln set $n (nft -f)" nft -f "$WORK/set-$n.nft"
    if [ $n = 100000 ] && [ $QUICK = 1 ]; then echo "linear $n skipped (--quick)"; continue; fi
    measure "linear $n (nft -f)" timeout 600 nft -f "$WORK/linear-$n.nft"
done
python3 - "$WORK/apply.txt" <<'PYEOF'
import sys
rows = {l.rsplit(' ', 2)[0]: (float(l.split()[-2]), int(l.split()[-1]) / 1024) for l in open(sys.argv[1])}
for n in (10000, 100000):
    k = rows.get(f"kiln set {n} (KilnFirewall)"); f = rows.get(f"kiln set {n} (nft -f)"); l = rows.get(f"linear {n} (nft -f)")
    if k and f: print(f"ratio {n}: KilnFirewall/nft-f time {k[0]/f[0]:.2f}x, memory {k[1]/f[1]:.2f}x")
    if k and l: print(f"ratio {n}: linear/kiln-set time {l[0]/k[0]:.1f}x, memory {l[1]/k[1]:.1f}x")
k = rows.get("kiln set 100000 (KilnFirewall)")
if k: print(f"target 100k: {k[0]:.2f} s (<= 1.0 s: {'PASS' if k[0] <= 1.0 else 'MISS'}), {k[1]:.0f} MB (<= 150 MB: {'PASS' if k[1] <= 150 else 'MISS'})")
PYEOF

# --- 2. Forwarding rate: client (10.1.0.2) -> router -> server (10.2.0.2). ---
C="${TAG}c"; R="${TAG}r"; S="${TAG}s"
newns "$C"; newns "$R"; newns "$S"
ip link add wan netns "$R" type veth peer name eth0 netns "$C"
ip link add lan netns "$R" type veth peer name eth0 netns "$S"
for pair in "$R wan 10.1.0.1/24" "$R lan 10.2.0.1/24" "$C eth0 10.1.0.2/24" "$S eth0 10.2.0.2/24"; do
    set -- $pair; ip -n "$1" addr add "$3" dev "$2"; ip -n "$1" link set "$2" up
done
ip -n "$C" route add default via 10.1.0.1
ip -n "$S" route add default via 10.2.0.1
ip netns exec "$R" sysctl -qw net.ipv4.ip_forward=1
ip netns exec "$S" iperf3 -s -D -p 5201 --pidfile "$WORK/iperf3.pid" >/dev/null
sleep 0.5; PIDS+=("$(cat "$WORK/iperf3.pid")")

rate() {  # rate <label> [ruleset]: received packets per second, median of 3 runs
    local label=$1 file=${2:-}
    ip netns exec "$R" nft flush ruleset
    if [ -n "$file" ]; then ip netns exec "$R" nft -f "$file" || { echo "$label: apply failed"; return; }; fi
    local runs=()
    for i in 1 2 3; do
        ip netns exec "$C" iperf3 -c 10.2.0.2 -u -b 0 -l 64 -t "$SECONDS_PER_RUN" -J > "$WORK/iperf.json" 2>/dev/null || true
        runs+=("$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["end"]["sum"]; print(int((d["packets"]-d["lost_packets"])/d["seconds"]))' "$WORK/iperf.json" 2>/dev/null || echo 0)")
    done
    local median; median=$(printf '%s\n' "${runs[@]}" | sort -n | sed -n 2p)
    printf "%-34s %10d pkt/s   (runs: %s)\n" "$label" "$median" "${runs[*]}"
    echo "$label $median" >> "$WORK/rate.txt"
}

echo "== forwarding: iperf3 UDP 64-byte payload, ${SECONDS_PER_RUN}s x3, received packets/s (median)"
rate "no ruleset"
rate "kiln set 0 (baseline)" "$WORK/set-0.nft"
rate "kiln set 100000" "$WORK/set-100000.nft"
rate "linear 10000" "$WORK/linear-10000.nft"
python3 - "$WORK/rate.txt" <<'PYEOF'
import sys
rows = {l.rsplit(' ', 1)[0]: int(l.split()[-1]) for l in open(sys.argv[1])}
base = rows.get("kiln set 0 (baseline)") or 1
for k, v in rows.items(): print(f"ratio {k} / kiln set 0: {v / base:.2f}x")
r = rows.get("kiln set 100000", 0) / base
print(f"target forwarding 100k >= 0.9x none: {r:.2f}x {'PASS' if r >= 0.9 else 'MISS'}")
PYEOF

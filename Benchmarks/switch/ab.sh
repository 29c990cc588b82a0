#!/bin/bash
# Kiln switch against itself: the switch built from source tree A and from tree B (each a checkout or
# `git archive` holding Sources/ and Benchmarks/switch/Sources), run in turn ROUNDS times on the topology of run.sh
# (gen -- switch -- sink, 64-byte UDP from trafgen). Prints packets per CPU-second of each run: on a shared machine
# one pair of runs says little, alternating rounds say whether a change moved the cost.
# Usage (root): Benchmarks/switch/ab.sh ROOT_A ROOT_B [ROUNDS (4)] [SECONDS (8)]
set -euo pipefail
A=$(cd "$1" && pwd); B=$(cd "$2" && pwd); ROUNDS=${3:-4}; DURATION=${4:-8}
WORK=$(mktemp -d /tmp/kiln-switch-ab.XXXXXX); TAG="kab$$"; NS=(); PID=""
cleanup() { if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; fi; for n in "${NS[@]:-}"; do ip netns del "$n" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
build() { # ROOT NAME
  local pkg="$WORK/pkg$2"; mkdir -p "$pkg/Sources"
  for d in CKilnShims KilnConfig KilnSystem KilnSwitch; do ln -s "$1/Sources/$d" "$pkg/Sources/$d"; done
  ln -s "$1/Benchmarks/switch/Sources/kiln-switch-bench" "$pkg/Sources/kiln-switch-bench"
  cat > "$pkg/Package.swift" <<'P'
// swift-tools-version:6.0
import PackageDescription
let package = Package(name: "SwitchBench", targets: [
    .target(name: "CKilnShims"), .target(name: "KilnConfig"),
    .target(name: "KilnSystem", dependencies: ["CKilnShims"]),
    .target(name: "KilnSwitch", dependencies: ["KilnConfig", "KilnSystem", "CKilnShims"]),
    .executableTarget(name: "kiln-switch-bench", dependencies: ["KilnSwitch"]),
])
P
  swift build -c release --package-path "$pkg" --scratch-path "$WORK/scratch$2" >&2
  echo "$WORK/scratch$2/release/kiln-switch-bench"
}
BA=$(build "$A" A); BB=$(build "$B" B)
GEN="${TAG}gen"; SW="${TAG}sw"; SINK="${TAG}sink"
for n in "$GEN" "$SW" "$SINK"; do ip netns add "$n"; NS+=("$n"); ip -n "$n" link set lo up
  ip netns exec "$n" sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1; done
ip link add swin netns "$SW" type veth peer name eth0 netns "$GEN"
ip link add swout netns "$SW" type veth peer name eth0 netns "$SINK"
ip -n "$GEN" link set eth0 address 02:00:00:00:00:01 up; ip -n "$SINK" link set eth0 address 02:00:00:00:00:02 up
ip -n "$SW" link set swin up; ip -n "$SW" link set swout up
ip netns exec "$SINK" nft -f - <<'NFT'
table netdev sink {
  chain ingress { type filter hook ingress device "eth0" priority 0; policy drop; }
}
NFT
cat > "$WORK/udp64.cfg" <<'CFG'
{ 0x02, 0x00, 0x00, 0x00, 0x00, 0x02,  0x02, 0x00, 0x00, 0x00, 0x00, 0x01,  0x08, 0x00,
  0x45, 0x00, 0x00, 46,  0x00, 0x00,  0x40, 0x00,  64, 17,  csumip(14, 33), 10, 0, 0, 1,  10, 0, 0, 2,
  0x30, 0x39,  0x00, 0x09,  0x00, 26,  0x00, 0x00, fill(0x00, 18) }
CFG
echo '{"ports": [{"name": "swin", "vlan": 1}, {"name": "swout", "vlan": 1}]}' > "$WORK/switch.json"
counter() { ip -n "$1" -s -j link show eth0 | python3 -c "import json,sys; print(json.load(sys.stdin)[0]['stats64']['$2']['packets'])"; }
for r in $(seq "$ROUNDS"); do for v in A B; do
  bin=$BA; [ $v = B ] && bin=$BB
  ip netns exec "$SW" "$bin" "$WORK/switch.json" 2>/dev/null & PID=$!
  sleep 1
  timeout -s INT 2 ip netns exec "$GEN" trafgen -o eth0 -i "$WORK/udp64.cfg" -P 1 --no-sock-mem --notouch-irq -q >/dev/null 2>&1 || true
  rx0=$(counter "$SINK" rx); tx0=$(counter "$GEN" tx); c0=$(awk '{print $14+$15}' /proc/$PID/stat)
  timeout -s INT "$DURATION" ip netns exec "$GEN" trafgen -o eth0 -i "$WORK/udp64.cfg" -P 1 --no-sock-mem --notouch-irq -q >/dev/null 2>&1 || true
  sleep 0.3
  rx1=$(counter "$SINK" rx); tx1=$(counter "$GEN" tx); c1=$(awk '{print $14+$15}' /proc/$PID/stat)
  kill -TERM $PID; wait $PID 2>/dev/null || true; PID=""
  python3 -c "import sys; d=$rx1-$rx0; o=$tx1-$tx0; c=($c1-$c0)/$(getconf CLK_TCK); print(f'round $r $v offered {o/$DURATION/1e6:.3f} Mpps delivered {100*d/max(o,1):.1f}% cpu {c:.2f} s {d/c/1e6 if c else 0:.3f} M/CPU-s load $(cut -d' ' -f1 /proc/loadavg)')"
done; done

#!/bin/bash
# End-to-end WAN optimizer benchmark: the dedup benchmark's corpus (Debian packages unpacked into one tar stream)
# and its 1%-edited copy sent from a client to a server through the real optimizer pair, counting the bytes on
# the WAN link itself. Lab as in Tests/KilnWANOptTests (one network namespace each, veth pairs):
#
#   client 10.1.0.2 ─ lan [A] wan 10.9.0.1 ─ 10.9.0.2 [wan: tbf RATE each way] 10.9.1.2 ─ 10.9.1.1 wan [B] lan ─ server 10.2.0.2
#
# A and B are `kiln-init service wanopt` from the release build (TPROXY interception, the peer channel, chunk
# stores). WAN bytes are A's `wan` veth kernel counters (tx_bytes + rx_bytes: every frame, Ethernet/IP/TCP headers
# and ACKs included; segmentation offload off on the WAN veths, so each packet is counted with its own headers)
# around each transfer. In the same run, over the same link: no optimizer (the optimizers not
# running: plain forwarding) and `zstd -1` alone (the file piped through `zstd -1` into the connection and through
# `zstd -d` at the server). The server checks every transfer's SHA-256 and byte count against the file sent.
# Targets: >= 95% reduction on the edited resend, >= 10x fewer WAN bytes than zstd -1 on it.
#
# Usage: Benchmarks/wanopt/run.sh [MEAN_EDIT_BYTES] [PACKAGES...]   (defaults as Benchmarks/dedup/run.sh)
# Environment: KILN_BIN (a directory with a release kiln-init; built here when unset), RATE (WAN rate, 200mbit).
# Needs root (namespaces, nft). Bounded: every transfer and wait has a timeout; the namespaces, the optimizers
# and the server are removed/killed (by pid) on any exit.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE="$ROOT/Benchmarks/wanopt"
MEAN=${1:-2048}
shift || true
PACKAGES=("$@")
[ ${#PACKAGES[@]} -gt 0 ] || PACKAGES=(coreutils perl-modules-5.36)
RATE=${RATE:-200mbit}
[ "$(id -u)" -eq 0 ] || { echo "run as root (network namespaces, nftables)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/kiln-wanopt-bench.XXXXXX)
chmod 755 "$WORK"
TAG="kwb$$"
PIDS=()
NAMESPACES=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    local n
    for n in "${NAMESPACES[@]}"; do ip netns del "$n" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
fail() { echo "wanopt bench: $*" >&2; exit 1; }

# --- Binaries and corpus ---
if [ -n "${KILN_BIN:-}" ]; then
    KILN_INIT="$KILN_BIN/kiln-init"
else
    (cd "$ROOT" && swift build -c release --scratch-path .build-guest --static-swift-stdlib --product kiln-init >&2)
    KILN_INIT="$(cd "$ROOT" && swift build -c release --scratch-path .build-guest --show-bin-path)/kiln-init"
fi
[ -x "$KILN_INIT" ] || fail "no kiln-init at $KILN_INIT"
source "$ROOT/Benchmarks/dedup/common.sh"
build_dedup_bench
make_corpus "$WORK" "$MEAN" "${PACKAGES[@]}"
rm -rf "$WORK/tree" "$WORK"/*.deb
echo "corpus: ${PACKAGES[*]}: $FILES files, $SIZE bytes; resend: $EDITS edits (mean $MEAN bytes, 1% of the bytes), $ESIZE bytes"

# --- The lab ---
ns() { echo "$TAG$1"; }
run_in() { local n=$1; shift; ip netns exec "$(ns "$n")" "$@"; }
for n in c a w b s; do
    ip netns add "$(ns $n)"
    NAMESPACES+=("$(ns $n)")
    ip -n "$(ns $n)" link set lo up
    run_in $n sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
done
link() { # NS1 DEV1 ADDR1 NS2 DEV2 ADDR2
    ip link add "$2" netns "$(ns "$1")" type veth peer name "$5" netns "$(ns "$4")"
    ip -n "$(ns "$1")" addr add "$3" dev "$2"; ip -n "$(ns "$1")" link set "$2" up
    ip -n "$(ns "$4")" addr add "$6" dev "$5"; ip -n "$(ns "$4")" link set "$5" up
}
link c eth0 10.1.0.2/24 a lan 10.1.0.1/24
link a wan 10.9.0.1/30 w w0 10.9.0.2/30
link w w1 10.9.1.2/30 b wan 10.9.1.1/30
link b lan 10.2.0.1/24 s eth0 10.2.0.2/24
ip -n "$(ns c)" route add default via 10.1.0.1
ip -n "$(ns a)" route add default via 10.9.0.2
ip -n "$(ns w)" route add 10.1.0.0/24 via 10.9.0.1
ip -n "$(ns w)" route add 10.2.0.0/24 via 10.9.1.1
ip -n "$(ns b)" route add default via 10.9.1.2
ip -n "$(ns s)" route add default via 10.2.0.1
for n in a w b; do run_in $n sysctl -q -w net.ipv4.ip_forward=1; done
for dev in w0 w1; do run_in w tc qdisc add dev $dev root tbf rate "$RATE" burst 256kb latency 100ms; done
# One packet per frame on the WAN link, as on a wire: no segmentation offload there (forwarded and local TCP alike
# is cut into MTU-sized packets before these devices count it, each with its own headers).
ip -n "$(ns a)" link set wan gso_max_segs 1
ip -n "$(ns w)" link set w0 gso_max_segs 1
ip -n "$(ns w)" link set w1 gso_max_segs 1
ip -n "$(ns b)" link set wan gso_max_segs 1

# Started as plain commands (not through a function), so that $! is the process itself (ip netns exec execs it).
ip netns exec "$(ns s)" python3 -u "$HERE/xfer.py" serve 5001 5002 > "$WORK/server.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do grep -q listening "$WORK/server.log" && break; sleep 0.1; done
grep -q listening "$WORK/server.log" || fail "the server did not start: $(cat "$WORK/server.log")"

wan_bytes() {
    run_in a cat /sys/class/net/wan/statistics/tx_bytes /sys/class/net/wan/statistics/rx_bytes | awk '{s += $1} END {print s}'
}
wan_packets() {
    run_in a cat /sys/class/net/wan/statistics/tx_packets /sys/class/net/wan/statistics/rx_packets | awk '{s += $1} END {print s}'
}
# transfer LABEL FILE PORT [zstd]: one transfer, checked at the server; records the WAN bytes as RESULT[LABEL].
declare -A RESULT
transfer() {
    local label=$1 file=$2 port=$3 mode=${4:-} before after packets out
    before=$(wan_bytes)
    packets=$(wan_packets)
    out=$(timeout 300 ip netns exec "$(ns c)" python3 "$HERE/xfer.py" send 10.2.0.2 "$port" "$file" $mode) ||
        fail "$label: transfer failed or delivered other bytes: $out"
    sleep 0.5  # the last ACKs and the channel's trailing frames
    after=$(wan_bytes)
    packets=$(( $(wan_packets) - packets ))
    RESULT[$label]=$((after - before))
    printf '  %-16s %10d WAN bytes in %6d packets   %s\n' "$label" "${RESULT[$label]}" "$packets" "$out"
}

# --- Baselines: no optimizer running (plain forwarding through A and B), then zstd -1 alone ---
echo "transfers (client -> server over the $RATE WAN; the server checks SHA-256 and length):"
transfer "plain first" "$WORK/corpus" 5001
transfer "plain resend" "$WORK/edited" 5001
transfer "zstd -1 first" "$WORK/corpus" 5002 zstd
transfer "zstd -1 resend" "$WORK/edited" 5002 zstd

# --- Kiln: the optimizer pair, fresh stores; first send, then the edited resend ---
printf 'kiln-wanopt-bench-key-%s' "$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')" > "$WORK/psk"
chmod 600 "$WORK/psk"
cat > "$WORK/a.json" <<EOF
{"name": "branch", "lan": ["lan"], "interceptPort": 7810, "peer": "10.9.1.1:7800", "keyFile": "$WORK/psk",
 "optimize": [{"destinations": ["10.2.0.0/24"], "ports": []}], "bypass": [], "preserveSource": true,
 "mark": 30736, "table": 78, "rulePriority": 100, "window": 262144, "reconnectMaxMs": 1000,
 "statusSocket": "$WORK/a.sock", "store": {"path": "$WORK/a-store", "capacity": 268435456},
 "averageChunkSize": 8192, "compressionLevel": 3}
EOF
cat > "$WORK/b.json" <<EOF
{"name": "dc", "lan": ["lan"], "interceptPort": 7810, "listen": "10.9.1.1:7800", "keyFile": "$WORK/psk",
 "optimize": [{"destinations": ["10.1.0.0/24"], "ports": []}], "bypass": [], "preserveSource": true,
 "mark": 30736, "table": 78, "rulePriority": 100, "window": 262144, "reconnectMaxMs": 1000,
 "statusSocket": "$WORK/b.sock", "store": {"path": "$WORK/b-store", "capacity": 268435456},
 "averageChunkSize": 8192, "compressionLevel": 3}
EOF
status() { "$KILN_INIT" service wanopt --status "$WORK/$1.json" 2>/dev/null; }
field() { python3 -c 'import json,sys
try:
    v = json.load(sys.stdin)
    for k in sys.argv[1:]: v = v[k]
    print(v)
except Exception: pass' "$@"; }
for side in b a; do
    ip netns exec "$(ns $side)" "$KILN_INIT" service wanopt "$WORK/$side.json" > "$WORK/$side.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 200); do status $side > /dev/null && break; sleep 0.1; done
    status $side > /dev/null || fail "optimizer $side did not come up: $(cat "$WORK/$side.log")"
done
for _ in $(seq 200); do [ "$(status a | field channel)" = up ] && break; sleep 0.1; done
[ "$(status a | field channel)" = up ] || fail "the channel did not come up: $(cat "$WORK/a.log" "$WORK/b.log")"
transfer "Kiln first" "$WORK/corpus" 5001
status a > "$WORK/a-first.json"
transfer "Kiln resend" "$WORK/edited" 5001
status a > "$WORK/a-status.json"
# Both went through the channel (not fail-open past a missing peer).
[ "$(field flowsOptimized < "$WORK/a-status.json")" = 2 ] && [ "$(field flowsDirect < "$WORK/a-status.json")" = 0 ] ||
    fail "the Kiln transfers were not both optimized: $(cat "$WORK/a-status.json")"
python3 - "$WORK/a-first.json" "$WORK/a-status.json" <<'PY'
import json, sys
first, last = (json.load(open(p))["optimized"] for p in sys.argv[1:])
for name, a, b in (("first send", {}, first), ("edited resend", first, last)):
    d = {k: b[k] - a.get(k, 0) for k in ("lanIn", "wanOut", "wanIn", "chunks", "chunkHits", "chunksSupplied")}
    print(f"  optimizer A's own count, {name}: LAN in {d['lanIn']:,}, channel out {d['wanOut']:,} and in {d['wanIn']:,} "
          f"bytes (payloads and frame headers); {d['chunks']:,} chunks, {d['chunkHits']:,} sent as references, "
          f"{d['chunksSupplied']:,} supplied on request")
PY

python3 - "$SIZE" "$ESIZE" "${RESULT[plain first]}" "${RESULT[plain resend]}" "${RESULT[zstd -1 first]}" \
    "${RESULT[zstd -1 resend]}" "${RESULT[Kiln first]}" "${RESULT[Kiln resend]}" <<'PY'
import sys
s1, s2, p1, p2, z1, z2, k1, k2 = map(int, sys.argv[1:])
print(f"{'WAN link bytes (tx+rx)':<26}{'first send':>14}{'edited resend':>16}{'resend reduction':>19}")
print(f"{'file size':<26}{s1:>14,}{s2:>16,}")
for name, a, b in (("no optimizer", p1, p2), ("zstd -1 alone", z1, z2), ("Kiln", k1, k2)):
    print(f"{name:<26}{a:>14,}{b:>16,}{100 * (1 - b / p2):>18.2f}%")
red, ratio = 100 * (1 - k2 / p2), z2 / k2
print(f"Kiln on the edited resend: {red:.2f}% fewer WAN bytes than no optimizer (target >= 95%: "
      f"{'met' if red >= 95 else 'MISSED'}), {ratio:.1f}x fewer than zstd -1 alone (target >= 10x: "
      f"{'met' if ratio >= 10 else 'MISSED'})")
PY

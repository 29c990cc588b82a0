#!/usr/bin/env bash
# kiln-init's /init → READY for the router, with the kernel modules unsigned (what Images/debian-cloud.yaml builds)
# against the same image with the distribution's signatures kept, in one run. Each variant boots under TCG twice:
# once with instruction counting (-icount shift=0,sleep=off: guest time is executed instructions, so the figure
# does not move with the host's load) and once in real time (what `kiln test` sees; noisy on a shared machine).
# Figures are the guest's own: the `ms` field of kiln-init's KILN events, from its CLOCK_MONOTONIC.
# Usage: Benchmarks/boot/run.sh [runs]   (needs Scripts/build; fetches the kernel package into the cache once)
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-3}
bin=${KILN_BIN:-$(swift build -c release --show-bin-path)}
work=$(mktemp -d /tmp/kiln-bench-boot-XXXXXX)
trap 'rm -rf "$work"' EXIT
for variant in strip keep; do
  mkdir -p "$work/$variant/Appliances"
  cp Appliances/router.yaml Appliances/router.lock "$work/$variant/Appliances/"
  cp -r Images "$work/$variant/Images"
  sed -i "s/^  moduleSignatures: .*/  moduleSignatures: $variant/" "$work/$variant/Images/debian-cloud.yaml"
  grep -q "moduleSignatures: $variant" "$work/$variant/Images/debian-cloud.yaml"
  "$bin/kiln" build "$work/$variant/Appliances/router.yaml" --out "$work/$variant/out" >/dev/null
done

# One boot; prints "ready_ms modules_ms" from the guest's events.
boot() {  # variant, extra kiln boot arguments…
  local variant=$1; shift
  "$bin/kiln" boot "$work/$variant/out/router" --accel tcg --console "$@" 2>&1 >/dev/null | python3 -c '
import json, sys
ready = modules = None
for line in sys.stdin:
    if not line.startswith("KILN {"): continue
    e = json.loads(line[5:])
    if e.get("event") == "phase" and e.get("phase") == "modules": modules = e["took"]
    if e.get("event") == "ready": ready = e["ms"]
if ready is None: sys.exit("no READY event")
print(ready, modules)'
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

declare -A result
for mode in icount realtime; do
  extra=(); [ "$mode" = icount ] && extra=(--qemu-arg=-icount --qemu-arg=shift=0,sleep=off)
  for variant in strip keep; do
    : > "$work/$mode-$variant"
    for _ in $(seq 1 "$runs"); do boot "$variant" "${extra[@]}" >> "$work/$mode-$variant"; done
    result[$mode-$variant-ready]=$(cut -d' ' -f1 "$work/$mode-$variant" | median)
    result[$mode-$variant-modules]=$(cut -d' ' -f2 "$work/$mode-$variant" | median)
  done
done

printf '%-10s %-28s %14s %14s\n' mode variant "/init→READY ms" "modules ms"
for mode in icount realtime; do
  for variant in strip keep; do
    name=$([ "$variant" = strip ] && echo "Kiln (modules unsigned)" || echo "baseline (signatures kept)")
    printf '%-10s %-28s %14.1f %14.1f\n' "$mode" "$name" "${result[$mode-$variant-ready]}" "${result[$mode-$variant-modules]}"
  done
  echo "$mode: baseline / Kiln = $(echo "scale=2; ${result[$mode-keep-ready]} / ${result[$mode-strip-ready]}" | bc)x (median of $runs boots each)"
done
echo "load average during the run: $(cut -d' ' -f1-3 /proc/loadavg)"

#!/usr/bin/env bash
# kiln-init's /init → READY for the router as Kiln builds and boots it (modules unsigned and with their ftrace call
# sites made NOPs at build time, TCG CPU model qemu64+rdrand) against two baselines in the same run: the same image
# with the modules as the distribution ships them (signatures and ftrace call sites kept), and the Kiln image booted
# with `-cpu max`; and, for the one-image-both-hypervisors change, the router built on a base that carries only the
# KVM drivers (no Xen platform modules, as before the image served both). Each variant boots under TCG twice:
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
for variant in strip keep kvmonly; do
  mkdir -p "$work/$variant/Appliances"
  cp Appliances/router.yaml Appliances/router.lock "$work/$variant/Appliances/"
  cp -r Images "$work/$variant/Images"
  base="$work/$variant/Images/debian-cloud.yaml"
  if [ "$variant" = kvmonly ]; then
    sed -i -e '/^  xen: \[/d' "$base"
    ! grep -q "xen-netfront" "$base"
  else
    sed -i -e "s/^  moduleSignatures: .*/  moduleSignatures: $variant/" -e "s/^  moduleFtrace: .*/  moduleFtrace: $variant/" "$base"
    grep -q "moduleSignatures: $variant" "$base"
    grep -q "moduleFtrace: $variant" "$base"
  fi
  "$bin/kiln" build "$work/$variant/Appliances/router.yaml" --out "$work/$variant/out" >/dev/null
done

# One boot; prints "ready_ms modules_ms qemu_cpu_ms" from the guest's events and QEMU's CPU time (user + system,
# from /proc/PID/stat) between kiln-init's first event and READY: on a loaded host the wall clock stretches but
# the CPU QEMU spends on the guest does not, so that is what the guest would take on an idle core.
boot() {  # variant, extra kiln boot arguments…
  local variant=$1; shift
  python3 - "$bin/kiln" "$work/$variant/out/router" "$@" <<'PY'
import json, os, subprocess, sys
kiln, image, extra = sys.argv[1], sys.argv[2], sys.argv[3:]
proc = subprocess.Popen([kiln, "boot", image, "--accel", "tcg", "--console", *extra],
                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
tick = os.sysconf("SC_CLK_TCK")
def qemu_cpu_ms():
    for task in os.listdir(f"/proc/{proc.pid}/task"):
        for child in open(f"/proc/{proc.pid}/task/{task}/children").read().split():
            if open(f"/proc/{child}/comm").read().startswith("qemu"):
                fields = open(f"/proc/{child}/stat").read().rsplit(")", 1)[1].split()
                return (int(fields[11]) + int(fields[12])) * 1000 / tick
    return float("nan")
ready = modules = cpu_init = cpu_ready = None
for line in proc.stderr:
    at = line.find("KILN {")  # the first event can share a line with the firmware's last message
    if at < 0: continue
    e = json.loads(line[at + 5:])
    if e.get("event") == "init": cpu_init = qemu_cpu_ms()
    if e.get("event") == "phase" and e.get("phase") == "modules": modules = e["took"]
    if e.get("event") == "ready": ready = e["ms"]; cpu_ready = qemu_cpu_ms()
proc.wait()
if ready is None or cpu_init is None: sys.exit(f"no READY event (kiln boot exited {proc.returncode})")
print(ready, modules, cpu_ready - cpu_init)
PY
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# Variants: `strip` is Kiln as built and booted by default (modules unsigned, ftrace call sites resolved, one vCPU
# under TCG, CPU model qemu64+rdrand); `keep` the same image with the modules as the distribution ships them
# (`moduleSignatures: keep`, `moduleFtrace: keep`); `max1` the Kiln image booted with one vCPU and `-cpu max`;
# `kvmonly` the image without the Xen drivers (what the router was before it also ran on Xen).
declare -A result
variants=(strip keep max1 kvmonly)
for mode in icount realtime; do
  extra=(); [ "$mode" = icount ] && extra=(--qemu-arg=-icount --qemu-arg=shift=0,sleep=off)
  for variant in "${variants[@]}"; do
    : > "$work/$mode-$variant"
    image=$variant; vm=()
    [ "$variant" = max1 ] && image=strip && vm=(--cpus 1 --qemu-arg=-cpu --qemu-arg=max)
    for _ in $(seq 1 "$runs"); do boot "$image" "${vm[@]}" "${extra[@]}" >> "$work/$mode-$variant"; done
    result[$mode-$variant-ready]=$(cut -d' ' -f1 "$work/$mode-$variant" | median)
    result[$mode-$variant-modules]=$(cut -d' ' -f2 "$work/$mode-$variant" | median)
    result[$mode-$variant-cpu]=$(cut -d' ' -f3 "$work/$mode-$variant" | median)
  done
done

printf '%-10s %-28s %14s %14s %16s\n' mode variant "/init→READY ms" "modules ms" "QEMU CPU ms"
for mode in icount realtime; do
  for variant in "${variants[@]}"; do
    case $variant in
      strip) name="Kiln" ;; keep) name="baseline: modules as shipped" ;; max1) name="baseline: 1 vCPU, -cpu max" ;;
      kvmonly) name="baseline: KVM drivers only" ;;
    esac
    printf '%-10s %-28s %14.1f %14.1f %16.0f\n' "$mode" "$name" "${result[$mode-$variant-ready]}" "${result[$mode-$variant-modules]}" "${result[$mode-$variant-cpu]}"
  done
  for b in keep max1 kvmonly; do
    echo "$mode: /init→READY $b / Kiln = $(echo "scale=2; ${result[$mode-$b-ready]} / ${result[$mode-strip-ready]}" | bc)x," \
         "QEMU CPU $(echo "scale=2; ${result[$mode-$b-cpu]} / ${result[$mode-strip-cpu]}" | bc)x (median of $runs boots each)"
  done
done
echo "load average during the run: $(cut -d' ' -f1-3 /proc/loadavg)"

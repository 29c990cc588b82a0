#!/usr/bin/env bash
# Warm rebuild after a config-only change, next to packing the same staged tree with cpio + zstd -19
# (the baseline a hand-rolled initramfs script would pay on every change), measured in the same run.
# Usage: Benchmarks/build/warm-rebuild.sh [runs]   (needs Scripts/build to have run; uses the warm cache)
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-5}
bin=${KILN_BIN:-$(swift build -c release --show-bin-path)}
work=$(mktemp -d /tmp/kiln-bench-XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/Appliances"
cp Appliances/router.yaml Appliances/router.lock "$work/Appliances/"
cp -r Images "$work/Images"
"$bin/kiln" build "$work/Appliances/router.yaml" --out "$work/out" >/dev/null   # warm every layer

now() { date +%s.%N; }
kiln_times=()
for i in $(seq 1 "$runs"); do
  # Only the config changes: a sysctl value differs on every run.
  sed -i "/^sysctl:/d; /^  net.ipv4.conf.all.rp_filter/d" "$work/Appliances/router.yaml"
  printf 'sysctl:\n  net.ipv4.conf.all.rp_filter: %d\n' $((i % 3)) >> "$work/Appliances/router.yaml"
  t0=$(now); "$bin/kiln" build "$work/Appliances/router.yaml" --out "$work/out" --offline >/dev/null; t1=$(now)
  kiln_times+=("$(echo "$t1 - $t0" | bc)")
done

# The baseline: the same tree, unpacked from Kiln's own initramfs, packed whole with cpio + zstd -19.
mkdir -p "$work/tree"
zstd -dc "$work/out/router/initramfs.cpio.zst" | python3 Benchmarks/build/extract-newc.py "$work/tree"
base_times=()
for i in $(seq 1 "$runs"); do
  t0=$(now)
  (cd "$work/tree" && find . -print0 | LC_ALL=C sort -z | cpio -o -0 -H newc --quiet --reproducible | zstd -19 -q -o "$work/base.cpio.zst" -f)
  t1=$(now)
  base_times+=("$(echo "$t1 - $t0" | bc)")
done

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
k=$(median "${kiln_times[@]}"); b=$(median "${base_times[@]}")
printf 'warm rebuild, config-only change (median of %d): kiln build %.3f s\n' "$runs" "$k"
printf 'baseline: find | cpio -o -H newc | zstd -19 of the same tree: %.3f s\n' "$b"
printf 'ratio baseline/kiln: %.1fx  (initramfs: kiln %s bytes, baseline %s bytes)\n' "$(echo "$b / $k" | bc -l)" \
  "$(stat -c %s "$work/out/router/initramfs.cpio.zst")" "$(stat -c %s "$work/base.cpio.zst")"

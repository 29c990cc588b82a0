#!/bin/bash
# Dedup benchmark: a corpus of real files (Debian packages unpacked into one tar stream), sent, then sent again
# with 1% of it edited at random places. Prints the bytes that would cross the WAN for: no optimizer, `zstd -1`
# alone (the zstd CLI on each stream), and Kiln (KilnDedup encoder -> decoder with persistent chunk stores; every
# delivered byte checked). Then chunking + hashing speed on one core (thread CPU time) against `sha256sum` of the
# same data run here (its CPU time from rusage) as the baseline.
# Targets: >= 95% reduction on the edited resend, >= 10x fewer bytes than zstd -1 alone, chunk+hash >= 1 GB/s.
#
# Usage: Benchmarks/dedup/run.sh [MEAN_EDIT_BYTES] [PACKAGES...]
#   MEAN_EDIT_BYTES: mean length of one edit (default 2048); the edits together touch 1% of the bytes.
#   PACKAGES: Debian packages for the corpus (default coreutils perl-modules-5.36), fetched with apt-get download.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
MEAN=${1:-2048}
shift || true
PACKAGES=("$@")
[ ${#PACKAGES[@]} -gt 0 ] || PACKAGES=(coreutils perl-modules-5.36)
WORK=$(mktemp -d /tmp/kiln-dedup-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

source "$ROOT/Benchmarks/dedup/common.sh"
build_dedup_bench
make_corpus "$WORK" "$MEAN" "${PACKAGES[@]}"
echo "corpus: ${PACKAGES[*]}: $FILES files, $SIZE bytes; resend: $EDITS edits (mean $MEAN bytes, 1% of the bytes), $ESIZE bytes"

# --- WAN bytes ---
Z1=$(zstd -1 -q -c "$WORK/corpus" | wc -c)
Z2=$(zstd -1 -q -c "$WORK/edited" | wc -c)
"$BIN" send "$WORK/stores" "$WORK/corpus" "$WORK/edited" > "$WORK/send.txt"
K1=$(awk 'NR==1 {for (i=1;i<=NF;i++) if ($i=="wan") print $(i+1)}' "$WORK/send.txt")
K2=$(awk 'NR==2 {for (i=1;i<=NF;i++) if ($i=="wan") print $(i+1)}' "$WORK/send.txt")
for f in corpus edited; do
    want=$(sha256sum "$WORK/$f" | cut -c1-64)
    grep -q "send $WORK/$f .* sha256 $want" "$WORK/send.txt" || { echo "Kiln delivered other bytes for $f" >&2; exit 1; }
done
sed 's/^/  kiln: /; s| '"$WORK"'/| |' "$WORK/send.txt"

python3 - "$SIZE" "$ESIZE" "$Z1" "$Z2" "$K1" "$K2" <<'PY'
import sys
s1, s2, z1, z2, k1, k2 = map(int, sys.argv[1:])
print(f"{'WAN bytes':<24}{'first send':>14}{'edited resend':>16}{'resend reduction':>19}")
for name, a, b in (("no optimizer", s1, s2), ("zstd -1 alone", z1, z2), ("Kiln", k1, k2)):
    print(f"{name:<24}{a:>14,}{b:>16,}{100 * (1 - b / s2):>18.2f}%")
print(f"Kiln vs zstd -1 on the edited resend: {z2 / k2:.1f}x fewer bytes (target >= 10x); "
      f"reduction {100 * (1 - k2 / s2):.2f}% (target >= 95%)")
PY

# --- Chunking + hashing on one core, against sha256sum of the same data in this run. Each is measured three
# times over >= 2 GB (the corpus repeated) and the median printed: the machine is shared and noisy. ---
: > "$WORK/tp.txt"
for _ in 1 2 3; do "$BIN" throughput "$WORK/corpus" 2 >> "$WORK/tp.txt"; done
ROUNDS=$(( (2000000000 + SIZE - 1) / SIZE ))
SHA_CPU=$(python3 - "$WORK/corpus" "$ROUNDS" <<'PY'
import resource, statistics, subprocess, sys
path, rounds = sys.argv[1], int(sys.argv[2])
times = []
for _ in range(3):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    for _ in range(rounds):
        subprocess.run(["sha256sum", path], check=True, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    times.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
print(" ".join(map(str, times)))
PY
)
python3 - "$WORK/tp.txt" "$SIZE" "$ROUNDS" "$SHA_CPU" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    f = line.split()
    rows.setdefault(f[1], []).append(float(f[f.index("gbps_cpu") + 1]))
size, rounds = int(sys.argv[2]), int(sys.argv[3])
sha_runs = [size * rounds / float(t) / 1e9 for t in sys.argv[4].split()]
med = {k: statistics.median(v) for k, v in rows.items()}
sha = statistics.median(sha_runs)
def runs(v): return "  (" + ", ".join(f"{x:.2f}" for x in v) + ")"
print(f"{'one core, CPU time, median of 3':<36}{'GB/s':>6}")
print(f"{'Kiln FastCDC + SHA-256':<36}{med['chunk+hash']:>6.2f}{runs(rows['chunk+hash'])}  as the encoder runs (cuts(in:), 64 KiB writes)")
print(f"{'  one chunk per call (nextCut)':<36}{med['chunk+hash-nextcut']:>6.2f}{runs(rows['chunk+hash-nextcut'])}")
print(f"{'  the same, one after the other':<36}{med['chunk-then-hash']:>6.2f}{runs(rows['chunk-then-hash'])}")
print(f"{'Kiln FastCDC alone':<36}{med['chunk']:>6.2f}{runs(rows['chunk'])}")
print(f"{'Kiln SHA-256 alone':<36}{med['hash']:>6.2f}{runs(rows['hash'])}")
print(f"{'sha256sum (baseline)':<36}{sha:>6.2f}{runs(sha_runs)}")
print(f"Kiln chunk+hash vs sha256sum: {med['chunk+hash'] / sha:.2f}x (target chunk+hash >= 1 GB/s)")
PY

# Shared by Benchmarks/dedup/run.sh and Benchmarks/wanopt/run.sh (sourced; ROOT set by the caller).

# Builds kiln-dedup-bench (release) in a throwaway package that links the KilnDedup sources; sets BIN.
build_dedup_bench() {
    local pkg="$ROOT/.build/dedup-bench-package"
    rm -rf "$pkg/Sources"; mkdir -p "$pkg/Sources"
    for d in CKilnHash CKilnShims CZstd KilnSystem KilnDedup; do ln -s "$ROOT/Sources/$d" "$pkg/Sources/$d"; done
    ln -s "$ROOT/Benchmarks/dedup/Sources/kiln-dedup-bench" "$pkg/Sources/kiln-dedup-bench"
    cat > "$pkg/Package.swift" <<'PKGEOF'
// swift-tools-version:6.0
import PackageDescription
let package = Package(name: "DedupBench", targets: [
    .systemLibrary(name: "CZstd", pkgConfig: "libzstd"),
    .target(name: "CKilnHash", cSettings: [.unsafeFlags(["-O2"])]),
    .target(name: "CKilnShims"),
    .target(name: "KilnSystem", dependencies: ["CKilnShims"]),
    .target(name: "KilnDedup", dependencies: ["CKilnHash", "CZstd", "KilnSystem"]),
    .executableTarget(name: "kiln-dedup-bench", dependencies: ["KilnDedup", "KilnSystem"]),
])
PKGEOF
    (cd "$pkg" && swift build -c release --product kiln-dedup-bench >&2)
    BIN="$pkg/.build/release/kiln-dedup-bench"
}

# make_corpus WORK MEAN PACKAGE...: the packages (apt-get download, dpkg-deb -x) as one tar stream in WORK/corpus
# (sorted, fixed metadata: the same bytes every run) and WORK/edited, the same with 1% of its bytes edited at
# random places (fixed seed, mean edit MEAN bytes). Sets SIZE, ESIZE, FILES and EDITS. Needs BIN.
make_corpus() {
    local work=$1 mean=$2
    shift 2
    (cd "$work" && apt-get download "$@" >/dev/null 2>&1) || { echo "apt-get download $* failed" >&2; return 1; }
    mkdir "$work/tree"
    for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$work/tree"; done
    tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf "$work/corpus" -C "$work/tree" .
    EDITS=$("$BIN" edit "$work/corpus" "$work/edited" 0.01 "$mean" 1 | awk '{print $2}')
    SIZE=$(stat -c %s "$work/corpus"); ESIZE=$(stat -c %s "$work/edited")
    FILES=$(find "$work/tree" -type f | wc -l)
}

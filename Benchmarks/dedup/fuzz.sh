#!/bin/bash
# Runs the KilnDedup decoder fuzz test over 1,000,000 payloads (or $1) in a release build (the debug suite runs
# 100,000), from a throwaway package that links only KilnDedup, its C parts and its tests.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PKG="$ROOT/.build/dedup-fuzz-package"; rm -rf "$PKG/Sources" "$PKG/Tests"; mkdir -p "$PKG/Sources" "$PKG/Tests"
for d in CKilnHash CKilnShims CZstd KilnSystem KilnDedup; do ln -s "$ROOT/Sources/$d" "$PKG/Sources/$d"; done
ln -s "$ROOT/Tests/KilnDedupTests" "$PKG/Tests/KilnDedupTests"
cat > "$PKG/Package.swift" <<'PKGEOF'
// swift-tools-version:6.0
import PackageDescription
let package = Package(name: "DedupFuzz", targets: [
    .systemLibrary(name: "CZstd", pkgConfig: "libzstd"),
    .target(name: "CKilnHash", cSettings: [.unsafeFlags(["-O2"])]),
    .target(name: "CKilnShims"),
    .target(name: "KilnSystem", dependencies: ["CKilnShims"]),
    .target(name: "KilnDedup", dependencies: ["CKilnHash", "CZstd", "KilnSystem"]),
    .testTarget(name: "KilnDedupTests", dependencies: ["KilnDedup", "CKilnHash", "KilnSystem"]),
])
PKGEOF
cd "$PKG"
KILN_DEDUP_FUZZ_ITERATIONS="${1:-1000000}" swift test -c release --filter FuzzTests 2>&1 | grep -E "dedup fuzz|✔|✘|error"

#!/usr/bin/env bash
# Creates a small SwiftPM package that builds only KilnConfig, KilnDHCP, its tests and the DHCP benchmark,
# by linking the sources of this checkout. Prints the package directory. Building through it keeps the DHCP
# benchmark and the 1M-input fuzz run independent of the rest of the tree (and of host-only dependencies).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
pkg="${KILN_DHCP_OVERLAY:-$root/.build-dhcp-overlay}"
mkdir -p "$pkg/Sources" "$pkg/Tests"
ln -sfn "$root/Sources/KilnConfig" "$pkg/Sources/KilnConfig"
ln -sfn "$root/Sources/KilnDHCP" "$pkg/Sources/KilnDHCP"
ln -sfn "$root/Benchmarks/dhcp/Sources/kiln-dhcp-bench" "$pkg/Sources/kiln-dhcp-bench"
ln -sfn "$root/Tests/KilnDHCPTests" "$pkg/Tests/KilnDHCPTests"
cat > "$pkg/Package.swift.new" <<'SWIFT'
// swift-tools-version:6.0
import PackageDescription
let package = Package(
    name: "KilnDHCPOverlay",
    targets: [
        .target(name: "KilnConfig"),
        .target(name: "KilnDHCP", dependencies: ["KilnConfig"]),
        .executableTarget(name: "kiln-dhcp-bench", dependencies: ["KilnDHCP", "KilnConfig"]),
        .testTarget(name: "KilnDHCPTests", dependencies: ["KilnDHCP"]),
    ]
)
SWIFT
mv "$pkg/Package.swift.new" "$pkg/Package.swift"
echo "$pkg"

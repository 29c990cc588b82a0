// swift-tools-version:6.0
import PackageDescription

// Guest targets (kiln-init and what it links) use Glibc only: no Foundation, Yams or libcurl.
// Host and guest share KilnConfig, KilnSystem and the pure encoders.
let package = Package(
    name: "Kiln",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "kiln", targets: ["kiln"]),
        .executable(name: "kiln-init", targets: ["kiln-init"]),
        .executable(name: "kiln-vpn", targets: ["kiln-vpn"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        // System libraries (host only).
        .systemLibrary(name: "CArchive", pkgConfig: "libarchive", providers: [.apt(["libarchive-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        // libnftables is used by both: dry-run at build time, apply in the guest.
        .systemLibrary(name: "CNftables", pkgConfig: "libnftables", providers: [.apt(["libnftables-dev"])]),

        // Shared leaves (guest-safe).
        .target(name: "CKilnShims"),
        .target(name: "KilnConfig"),
        .target(name: "KilnSystem", dependencies: ["CKilnShims"]),
        .target(name: "KilnNetlink", dependencies: ["KilnSystem"]),
        .target(name: "KilnFirewall", dependencies: ["KilnConfig", "CNftables"]),
        .target(name: "KilnDHCP", dependencies: ["KilnConfig", "KilnSystem"]),
        // The packet path is always optimized, in debug builds too: unspecialized generics and coroutines allocate
        // on the heap at -Onone, and AllocationTests measures the code that ships.
        .target(name: "KilnSwitch", dependencies: ["KilnConfig", "KilnSystem", "CKilnShims"],
                swiftSettings: [.unsafeFlags(["-O"])]),
        // SHA-256 with SHA-NI; optimised even in debug builds, the chunk store hashes every chunk it reads.
        .target(name: "CKilnHash", cSettings: [.unsafeFlags(["-O2"])]),
        .target(name: "KilnDedup", dependencies: ["CKilnHash", "KilnSystem"]),
        .target(name: "KilnWANOpt", dependencies: ["KilnConfig", "KilnSystem", "KilnNetlink", "KilnFirewall", "KilnDedup", "CKilnHash"]),
        .target(name: "KilnVPN", dependencies: ["KilnConfig", "KilnSystem", "CKilnShims", .product(name: "Crypto", package: "swift-crypto")]),

        // Guest PID 1.
        .executableTarget(
            name: "kiln-init",
            dependencies: ["KilnConfig", "KilnSystem", "KilnNetlink", "KilnDHCP", "KilnFirewall", "KilnSwitch", "KilnWANOpt", "CKilnShims"],
            linkerSettings: [.unsafeFlags(["-Xlinker", "--build-id=none"])]
        ),

        // Guest executables beside kiln-init, put only into the images whose roles need them.
        .executableTarget(
            name: "kiln-vpn",
            dependencies: ["KilnConfig", "KilnSystem", "KilnVPN", "CKilnShims"],
            linkerSettings: [.unsafeFlags(["-Xlinker", "--build-id=none"])]
        ),

        // Host modules.
        .target(name: "KilnManifest", dependencies: ["KilnConfig", "KilnSystem", "KilnDHCP", "KilnFirewall", "KilnSwitch", "KilnWANOpt", "KilnVPN", .product(name: "Yams", package: "Yams")]),
        .target(name: "KilnPackages", dependencies: [
            "KilnSystem", "CCurl", "CArchive", .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "KilnImage", dependencies: [
            "KilnConfig", "KilnManifest", "KilnPackages", "KilnDHCP", "KilnFirewall", "KilnSwitch", "KilnWANOpt", "CArchive", "CZstd",
            .product(name: "Crypto", package: "swift-crypto"), .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "KilnVM", dependencies: ["KilnConfig", "KilnSystem", "CKilnShims", .product(name: "Logging", package: "swift-log")]),
        .target(name: "KilnTest", dependencies: [
            "KilnVM", "KilnManifest", "KilnConfig", "KilnSystem", "KilnDeploy", "CKilnShims",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "KilnDeploy", dependencies: ["KilnImage", "KilnManifest", .product(name: "Logging", package: "swift-log")]),
        .executableTarget(name: "kiln", dependencies: [
            "KilnManifest", "KilnPackages", "KilnImage", "KilnSystem", "KilnVM", "KilnTest", "KilnDeploy",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),

        // Helpers shared by the test targets: a fixed-seed generator, commands with a deadline, temporary
        // directories and network namespaces that are removed afterwards.
        .target(name: "KilnTestSupport", dependencies: ["KilnSystem"], path: "Tests/KilnTestSupport"),
        .testTarget(name: "KilnConfigTests", dependencies: ["KilnConfig", "KilnTestSupport"]),
        .testTarget(name: "KilnManifestTests", dependencies: ["KilnManifest", "KilnWANOpt", "KilnVPN"], resources: [.copy("Fixtures")]),
        .testTarget(name: "KilnPackagesTests", dependencies: ["KilnPackages"], exclude: ["Helpers"]),
        .testTarget(name: "KilnImageTests", dependencies: ["KilnImage"]),
        .testTarget(name: "KilnNetlinkTests", dependencies: ["KilnNetlink", "KilnTestSupport"]),
        .testTarget(name: "KilnFirewallTests", dependencies: ["KilnFirewall", "KilnSystem"], exclude: ["Golden"]),
        .testTarget(name: "KilnVMTests", dependencies: ["KilnVM"]),
        .testTarget(name: "KilnDeployTests", dependencies: ["KilnDeploy"], exclude: ["Golden"]),
        .testTarget(name: "KilnDHCPTests", dependencies: ["KilnDHCP"]),
        // Counts the heap allocations of a thread (defines malloc & co. in the test binary); KilnSwitchTests proves
        // the forwarding path allocates nothing per frame with it.
        .target(name: "CAllocationCounter", path: "Tests/Helpers/CAllocationCounter"),
        .testTarget(name: "KilnSwitchTests", dependencies: ["KilnTestSupport", "KilnSwitch", "KilnSystem", "CAllocationCounter"], exclude: ["Golden", "Tools"]),
        .testTarget(name: "KilnVPNTests", dependencies: ["KilnTestSupport", "KilnVPN"]),
        .testTarget(name: "KilnDedupTests", dependencies: ["KilnTestSupport", "KilnDedup", "CKilnHash", "KilnSystem"]),
        .testTarget(name: "KilnWANOptTests", dependencies: ["KilnTestSupport", "KilnWANOpt", "KilnSystem", "KilnConfig", "KilnDedup"], exclude: ["Tools"]),
        // Runs the release binaries from Scripts/build (KILN_BIN): builds, boots and topologies in QEMU.
        .testTarget(name: "KilnIntegrationTests", exclude: ["Fixtures"]),
        .testTarget(name: "KilnSystemTests", dependencies: ["KilnSystem", "KilnTestSupport"]),
        .testTarget(name: "KilnTestTests", dependencies: ["KilnTest", "KilnSystem"]),
    ]
)

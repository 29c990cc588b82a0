import Foundation
import Testing
@testable import KilnPackages

@Suite("resolution")
struct ResolverTests {
    static func record(_ name: String, _ version: String, suite: String = "bookworm", depends: String = "",
                       preDepends: String = "", provides: [String] = []) -> PackageRecord {
        PackageRecord(name: name, version: version, architecture: "amd64", filename: "pool/main/\(name)_\(version).deb",
                      size: 100, sha256: String(repeating: "0", count: 64),
                      depends: Dependency.parseField(Substring(depends)),
                      preDepends: Dependency.parseField(Substring(preDepends)), provides: provides,
                      baseURI: suite == "bookworm-security" ? "http://sec.example/debian-security" : "http://m.example/debian",
                      suite: suite)
    }

    static let index = PackageIndex(records: [
        record("linux-image-cloud-amd64", "6.1.129-1", depends: "linux-image-6.1.0-31-cloud-amd64 (= 6.1.129-1)"),
        record("linux-image-cloud-amd64", "6.1.135-1", suite: "bookworm-security",
               depends: "linux-image-6.1.0-34-cloud-amd64 (= 6.1.135-1)"),
        record("linux-image-6.1.0-31-cloud-amd64", "6.1.129-1", depends: "kmod, linux-base (>= 4.3~), initramfs-tools | linux-initramfs-tool"),
        record("linux-image-6.1.0-34-cloud-amd64", "6.1.135-1", suite: "bookworm-security",
               depends: "kmod, linux-base (>= 4.3~), initramfs-tools | linux-initramfs-tool"),
        record("kmod", "30+20221128-1", depends: "libc6 (>= 2.34), lsb-base | sysvinit-utils"),
        record("linux-base", "4.9"),
        record("initramfs-tools", "0.142", depends: "initramfs-tools-core (= 0.142), awk"),
        record("initramfs-tools-core", "0.142", depends: "coreutils (>= 8.24)"),
        record("dracut", "059-4", provides: ["linux-initramfs-tool"]),
        record("mawk", "1.3.4.20200120-3.1", preDepends: "libc6 (>= 2.34)", provides: ["awk"]),
        record("original-awk", "2012-12-20-9", provides: ["awk"]),
        record("libc6", "2.36-9+deb12u9"),
        record("libc6", "2.36-9+deb12u10", suite: "bookworm-security"),
        record("sysvinit-utils", "3.06-4"),
        record("coreutils", "9.1-1", preDepends: "libc6"),
        record("broken", "1", depends: "does-not-exist | neither-does-this (>= 2)"),
    ], releaseDates: [1_700_000_000, 1_746_866_587])

    @Test func highestVersionAcrossSuites() throws {
        let records = try Self.index.resolve(["linux-image-cloud-amd64"], followDepends: false)
        #expect(records.count == 1)
        #expect(records[0].version == "6.1.135-1")
        #expect(records[0].suite == "bookworm-security")
        #expect(records[0].url == "http://sec.example/debian-security/pool/main/linux-image-cloud-amd64_6.1.135-1.deb")
        #expect(Self.index.sourceDateEpoch == 1_746_866_587)
    }

    @Test func followsDependsAlternativesAndProvides() throws {
        let records = try Self.index.resolve(["linux-image-cloud-amd64"], followDepends: true)
        let names = records.map(\.name)
        #expect(names == ["coreutils", "initramfs-tools", "initramfs-tools-core", "kmod", "libc6",
                          "linux-base", "linux-image-6.1.0-34-cloud-amd64", "linux-image-cloud-amd64", "mawk",
                          "sysvinit-utils"])
        // "initramfs-tools | linux-initramfs-tool" takes the first alternative, not dracut.
        #expect(!names.contains("dracut"))
        // "lsb-base | sysvinit-utils": lsb-base is in no index, so the second alternative is taken.
        #expect(names.contains("sysvinit-utils"))
        // awk is virtual: the alphabetically first provider (mawk) is chosen, deterministically.
        #expect(names.contains("mawk") && !names.contains("original-awk"))
        #expect(records.first { $0.name == "libc6" }?.version == "2.36-9+deb12u10")
    }

    @Test func alreadyChosenAlternativeWins() throws {
        let records = try Self.index.resolve(["original-awk", "initramfs-tools"], followDepends: true)
        let names = records.map(\.name)
        #expect(names.contains("original-awk"))
        #expect(!names.contains("mawk"))
    }

    @Test func virtualNameRequestedDirectly() throws {
        let records = try Self.index.resolve(["linux-initramfs-tool"], followDepends: false)
        #expect(records.map(\.name) == ["dracut"])
    }

    @Test func withoutDependsOnlyNamed() throws {
        let records = try Self.index.resolve(["libc6", "kmod", "libc6"], followDepends: false)
        #expect(records.map(\.name) == ["kmod", "libc6"])
    }

    @Test func missingPackageSuggestsNearNames() {
        #expect(throws: PackageError.packageNotFound(name: "kmood", suggestions: ["kmod"])) {
            try Self.index.resolve(["kmood"], followDepends: true)
        }
        #expect(throws: PackageError.packageNotFound(name: "linux-image", suggestions: [
            "linux-image-cloud-amd64", "linux-image-6.1.0-31-cloud-amd64", "linux-image-6.1.0-34-cloud-amd64",
        ])) {
            try Self.index.resolve(["linux-image"], followDepends: true)
        }
        let message = PackageError.packageNotFound(name: "kmood", suggestions: ["kmod"]).description
        #expect(message.contains("'kmood'") && message.contains("did you mean kmod"))
    }

    @Test func unsatisfiableDependencyNamesBoth() {
        #expect(throws: PackageError.unsatisfiableDependency(
            package: "broken 1", dependency: "does-not-exist | neither-does-this (>= 2)")) {
            try Self.index.resolve(["broken"], followDepends: true)
        }
    }

    @Test func candidatesSortedHighestFirst() {
        #expect(Self.index.candidates(named: "libc6").map(\.version) == ["2.36-9+deb12u10", "2.36-9+deb12u9"])
        #expect(Self.index.best(named: "nothing") == nil)
    }
}

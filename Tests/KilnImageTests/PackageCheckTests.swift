import Foundation
import Testing
@testable import KilnImage
import KilnManifest
@testable import KilnPackages

/// `kiln validate` finds an unknown package at its manifest line, from the lock or the cached index, and says
/// when it had neither to check against.
struct PackageCheckTests {
    /// A manifest in a temporary directory with the repository's base beside it; its packages on lines 5 and 6.
    func load(_ packages: [String]) throws -> (ApplianceSpec, TemporaryDirectory) {
        let dir = try TemporaryDirectory()
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        try dir.write("Images/debian-cloud.yaml", try String(contentsOf: repo.appendingPathComponent("Images/debian-cloud.yaml"), encoding: .utf8))
        try dir.write("m.yaml", "apiVersion: kiln/v1\nname: r\nbase: debian-cloud\npackages:\n" + packages.map { "  - \($0)\n" }.joined())
        return (try ManifestLoader.load(dir.path + "/m.yaml"), dir)
    }

    func record(_ name: String, provides: [String] = []) -> PackageRecord {
        PackageRecord(name: name, version: "1", architecture: "amd64", filename: "pool/\(name).deb", size: 1, sha256: "00", provides: provides)
    }

    /// Every package the base names, and `extra`: only the manifest's own names can be unknown.
    func index(_ spec: ApplianceSpec, plus extra: [PackageRecord]) throws -> PackageIndex {
        let base = try ManifestDecoder(file: spec.basePath).decode(BaseImage.self, from: try String(contentsOfFile: spec.basePath, encoding: .utf8))
        return PackageIndex(records: (base.packages + [base.kernel.package]).map { record($0) } + extra)
    }

    @Test func unknownPackageIsReportedAtItsLineFromTheCachedIndex() throws {
        let (spec, dir) = try load(["nftables", "wireguard-tool"])
        defer { dir.cleanup() }
        let known = try index(spec, plus: [record("wireguard-tools"), record("nftables")])
        let (problems, basis) = PackageCheck.check(spec, lock: nil, lockPath: dir.path + "/m.lock") { known }
        #expect(basis == .cachedIndex)
        #expect(problems.map(\.description) == [
            "\(dir.path)/m.yaml:6:5: error: packages: unknown package 'wireguard-tool': no cached package index lists it (did you mean 'wireguard-tools'?)"])
    }

    @Test func theLockAloneAnswersWhenItPinsEveryName() throws {
        let (spec, dir) = try load(["nftables"])
        defer { dir.cleanup() }
        let lock = LockFile(sourceDateEpoch: 1, suites: ["s"], packages: spec.packages.map { LockedPackage(name: $0, version: "1", architecture: "amd64", filename: "f", size: 1, sha256: "00") })
        var asked = false
        let (problems, basis) = PackageCheck.check(spec, lock: lock, lockPath: "m.lock") { asked = true; return nil }
        #expect(problems.isEmpty && basis == .lock("m.lock") && !asked)
    }

    @Test func aNameTheLockDoesNotPinIsLookedUpAndAVirtualPackageCounts() throws {
        let (spec, dir) = try load(["nftables", "awk", "nosuchpkg"])
        defer { dir.cleanup() }
        let lock = LockFile(sourceDateEpoch: 1, suites: ["s"], packages: spec.packages.filter { $0 != "awk" && $0 != "nosuchpkg" }
            .map { LockedPackage(name: $0, version: "1", architecture: "amd64", filename: "f", size: 1, sha256: "00") })
        let known = try index(spec, plus: [record("mawk", provides: ["awk"]), record("nftables")])
        let (problems, basis) = PackageCheck.check(spec, lock: lock, lockPath: "m.lock") { known }
        #expect(basis == .lockAndCachedIndex("m.lock"))
        #expect(problems.map(\.location.line) == [7])
        #expect(problems.first?.message.hasPrefix("unknown package 'nosuchpkg': no cached package index lists it and m.lock does not pin it") == true)
    }

    @Test func withNeitherLockNorIndexNothingIsClaimed() throws {
        let (spec, dir) = try load(["nosuchpkg"])
        defer { dir.cleanup() }
        let (problems, basis) = PackageCheck.check(spec, lock: nil, lockPath: "m.lock") { nil }
        #expect(problems.isEmpty && basis == .none)
    }

    @Test func theCachedIndexIsReadFromTheCacheAlone() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let cache = PackageCache(directory: dir.path)
        #expect(cache.cachedIndex() == nil)
        let stanza = "Package: wireguard-tools\nVersion: 1.0\nArchitecture: amd64\nFilename: pool/w.deb\nSize: 1\nSHA256: \(String(repeating: "c", count: 64))\n\n"
        try dir.write("indices/" + String(repeating: "a", count: 64), stanza)
        try dir.write("indices/" + String(repeating: "b", count: 64) + ".partial", "Package: partial\nArchitecture: amd64\n\n")
        let index = try #require(cache.cachedIndex())
        #expect(index.knows("wireguard-tools") && !index.knows("partial") && !index.knows("nftables"))
    }
}

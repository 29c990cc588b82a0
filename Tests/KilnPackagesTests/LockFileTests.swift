import Foundation
import Testing
@testable import KilnPackages

@Suite("lock file")
struct LockFileTests {
    static let lock = LockFile(sourceDateEpoch: 1_746_866_587, suites: ["bookworm-security", "bookworm"], packages: [
        LockedPackage(name: "libc6", version: "2.36-9+deb12u10", architecture: "amd64",
                      filename: "pool/updates/main/g/glibc/libc6_2.36-9+deb12u10_amd64.deb", size: 2_757_936,
                      sha256: String(repeating: "b", count: 64), suite: "bookworm-security"),
        LockedPackage(name: "kmod", version: "30+20221128-1", architecture: "amd64",
                      filename: "pool/main/k/kmod/kmod_30+20221128-1_amd64.deb", size: 96_000,
                      sha256: String(repeating: "a", count: 64), suite: "bookworm"),
    ])

    @Test func roundTripIsStableAndSorted() throws {
        let directory = try makeTempDirectory("lock")
        defer { removeTree(directory) }
        let path = directory + "/router.lock"
        try Self.lock.write(to: path)
        let read = try LockFile.read(path)
        #expect(read == Self.lock)
        #expect(read.packages.map(\.name) == ["kmod", "libc6"])
        #expect(read.suites == ["bookworm", "bookworm-security"])
        let first = try String(contentsOfFile: path, encoding: .utf8)
        try read.write(to: path)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == first)
        // Diff-friendly: one field per line, keys sorted, slashes unescaped, no temp file left behind.
        #expect(first.contains("\"filename\" : \"pool/main/k/kmod/kmod_30+20221128-1_amd64.deb\""))
        #expect(first.range(of: "\"lockVersion\"")!.lowerBound < first.range(of: "\"packages\"")!.lowerBound)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["router.lock"])
    }

    @Test func pathNextToManifest() {
        #expect(LockFile.path(forManifest: "/work/Appliances/router.yaml") == "/work/Appliances/router.lock")
    }

    @Test func badLockFilesNameThePathAndProblem() throws {
        let directory = try makeTempDirectory("badlock")
        defer { removeTree(directory) }
        let path = directory + "/x.lock"
        try writeFile(path, "{ not json")
        #expect(throws: PackageError.self) { try LockFile.read(path) }
        try writeFile(path, #"{"lockVersion": 1, "sourceDateEpoch": 1, "suites": []}"#)
        #expect(throws: PackageError.lockFile(path: path, message: "missing key 'packages' at top level")) {
            try LockFile.read(path)
        }
        try writeFile(path, #"{"lockVersion": 2, "sourceDateEpoch": 1, "suites": [], "packages": []}"#)
        #expect(throws: PackageError.lockFile(path: path, message: "unsupported lockVersion 2; expected 1")) {
            try LockFile.read(path)
        }
        let traversal = "../../../../etc/" + String(repeating: "a", count: 48)
        try writeFile(path, #"{"lockVersion": 1, "sourceDateEpoch": 1, "suites": [], "packages": [{"name": "x", "#
                      + #""version": "1", "architecture": "all", "filename": "pool/x.deb", "size": 1, "suite": "", "#
                      + #""sha256": "\#(traversal)"}]}"#)
        #expect(throws: PackageError.lockFile(path: path, message: "package x: bad sha256 or size")) {
            try LockFile.read(path)
        }
        #expect(throws: PackageError.lockFile(path: directory + "/none.lock", message: "cannot read lock file")) {
            try LockFile.read(directory + "/none.lock")
        }
    }

    @Test func fromIndexUsesNewestReleaseDate() throws {
        let index = PackageIndex(records: [ResolverTests.record("kmod", "30")], releaseDates: [5, 9, 7])
        let lock = LockFile(index: index, records: try index.resolve(["kmod"], followDepends: false))
        #expect(lock.sourceDateEpoch == 9)
        #expect(lock.suites == ["bookworm"])
        #expect(lock.packages.map(\.name) == ["kmod"])
    }
}

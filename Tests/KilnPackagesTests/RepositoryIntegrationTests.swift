import Foundation
import Testing
@testable import KilnPackages

/// End-to-end against a signed repository served on loopback by Helpers/repo-server.py.
@Suite("local repository", .serialized)
struct RepositoryIntegrationTests {
    let repository: TestRepository
    let server: RepoServer
    let cache: PackageCache

    init() throws {
        repository = try TestRepository.get()
        server = try RepoServer(root: repository.root)
        cache = PackageCache(directory: try makeTempDirectory("cache"), options: testOptions, logger: testLogger)
    }

    private func index(mode: String = "ok", repo: String = "good", keyring: String? = nil) throws -> PackageIndex {
        let sources = repository.sources(server, mode: mode, repo: repo, keyring: keyring)
        return try RepositoryClient(sources: sources, cache: cache, logger: testLogger).loadIndex()
    }

    private func hello(_ index: PackageIndex) throws -> [PackageRecord] {
        try index.resolve(["kiln-hello"], followDepends: false)
    }

    @Test func endToEndResolveFetchLockAndOfflineEnsure() throws {
        defer { removeTree(cache.directory) }
        let index = try index()
        #expect(index.count == 6)
        #expect(index.sourceDateEpoch == 1_717_329_600)
        let records = try index.resolve(["kiln-hello"], followDepends: true)
        #expect(records.map(\.name) == ["kiln-base", "kiln-hello", "kiln-libfoo", "kiln-shell"])
        #expect(records.first { $0.name == "kiln-libfoo" }?.version == "1.2-1")
        #expect(records.first { $0.name == "kiln-libfoo" }?.suite == "bookworm-updates")

        let paths = try cache.fetch(records, parallel: 4)
        #expect(paths.count == 4)
        for record in records {
            let path = try #require(paths[record.name])
            #expect(path == cache.directory + "/debs/\(record.sha256).deb")
            #expect(try sha256Hex(ofFile: path) == record.sha256)
            // The file is a real .deb whose control data names the package.
            #expect(try runTool("dpkg-deb", ["--info", path]) == 0)
        }
        #expect(cachedFiles(cache).allSatisfy { $0.hasSuffix(".deb") })

        // A second resolve reuses the verified indices: only InRelease is fetched again.
        let xzBefore = server.requests(containing: "Packages.xz").count
        _ = try self.index()
        #expect(server.requests(containing: "Packages.xz").count == xzBefore)
        #expect(server.requests(containing: "InRelease").count == 4)

        let lockPath = cache.directory + "/router.lock"
        try LockFile(index: index, records: records).write(to: lockPath)
        let lock = try LockFile.read(lockPath)
        #expect(lock.sourceDateEpoch == 1_717_329_600)
        #expect(lock.suites == ["bookworm", "bookworm-updates"])

        // Warm cache + lock file: no network at all. The server is gone and the URI points nowhere.
        let sources = repository.sources(server)
        server.stop()
        let offline = try cache.ensure(lock.packages, sources: sources)
        #expect(offline == paths)
    }

    @Test func ensureDownloadsOnlyWhatIsMissingFromTheRightSuite() throws {
        defer { removeTree(cache.directory) }
        let records = try index().resolve(["kiln-hello"], followDepends: true)
        let locked = records.map(\.locked)
        _ = try cache.ensure(Array(locked.prefix(1)), sources: repository.sources(server))
        let before = server.requests(containing: "/pool/").count
        let paths = try cache.ensure(locked, sources: repository.sources(server), progress: JSONLinesProgress(
            handle: FileHandle(forWritingAtPath: "/dev/null") ?? .standardError))
        #expect(paths.count == 4)
        #expect(server.requests(containing: "/pool/").count == before + 3)
    }

    @Test func debHashMismatchIsRejectedAndNothingIsCached() throws {
        defer { removeTree(cache.directory) }
        let records = try hello(index(repo: "badhash"))
        let record = try #require(records.first)
        #expect {
            try cache.fetch(records)
        } throws: { error in
            guard case let .hashMismatch(package, url, expected, actual) = error as? PackageError else { return false }
            return package == "kiln-hello" && url == record.url && expected == record.sha256 && actual != expected
                && "\(error)".contains(record.url)
        }
        #expect(cachedFiles(cache).isEmpty)
    }

    @Test func inReleaseSignedByAnotherKeyIsRejected() throws {
        defer { removeTree(cache.directory) }
        #expect {
            try index(repo: "otherkey")
        } throws: { error in
            guard case let .badSignature(url, _, message) = error as? PackageError else { return false }
            return url.hasSuffix("/otherkey/dists/bookworm/InRelease") && message.contains("No public key")
        }
    }

    @Test func tamperedInReleaseIsRejected() throws {
        defer { removeTree(cache.directory) }
        #expect {
            try index(repo: "tampered")
        } throws: { error in
            guard case let .badSignature(url, _, message) = error as? PackageError else { return false }
            return url.hasSuffix("/tampered/dists/bookworm/InRelease") && message.contains("BAD signature")
        }
        #expect(cachedFiles(cache).isEmpty)
    }

    @Test func armoredKeyringIsAccepted() throws {
        defer { removeTree(cache.directory) }
        #expect(try index(keyring: repository.armoredKeyring).count == 6)
    }

    @Test func truncatedDownloadIsResumed() throws {
        defer { removeTree(cache.directory) }
        let records = try hello(index(mode: "truncate-once"))
        let paths = try cache.fetch(records)
        let path = try #require(paths["kiln-hello"])
        #expect(try sha256Hex(ofFile: path) == records[0].sha256)
        let requests = server.requests(containing: "kiln-hello_")
        #expect(requests.count == 2)
        #expect(cachedFiles(cache) == ["\(records[0].sha256).deb"])
    }

    @Test func alwaysTruncatedDownloadFailsClearlyAndCachesNothing() throws {
        defer { removeTree(cache.directory) }
        let records = try hello(index(mode: "truncate"))
        #expect {
            try cache.fetch(records)
        } throws: { error in
            guard case let .transfer(url, package, _, attempts) = error as? PackageError else { return false }
            return url == records[0].url && package == "kiln-hello" && attempts == testOptions.attempts
        }
        #expect(server.requests(containing: "kiln-hello_").count == testOptions.attempts)
        // Only the resumable partial remains; nothing under a cache name.
        #expect(cachedFiles(cache) == ["\(records[0].sha256).deb.partial"])
        #expect(cache.cachedDeb(sha256: records[0].sha256, size: records[0].size) == nil)
    }

    @Test func notFoundIsNotRetried() throws {
        defer { removeTree(cache.directory) }
        let records = try hello(index(mode: "notfound"))
        #expect(throws: PackageError.httpStatus(url: records[0].url, package: "kiln-hello", status: 404, attempts: 1)) {
            try cache.fetch(records)
        }
        #expect(server.requests(containing: "kiln-hello_").count == 1)
        #expect(cachedFiles(cache).isEmpty)
    }

    @Test func missingSuiteNamesTheInReleaseURL() throws {
        defer { removeTree(cache.directory) }
        let sources = repository.sources(server, suites: ["bookworm-nosuch"])
        let url = server.base(mode: "ok", repo: "good") + "/dists/bookworm-nosuch/InRelease"
        #expect(throws: PackageError.httpStatus(url: url, package: nil, status: 404, attempts: 1)) {
            try RepositoryClient(sources: sources, cache: cache, logger: testLogger).loadIndex()
        }
    }

    @Test func serverErrorIsRetried() throws {
        defer { removeTree(cache.directory) }
        let records = try hello(index(mode: "flaky"))
        _ = try cache.fetch(records)
        #expect(server.requests(containing: "kiln-hello_").count == 2)
    }

    @Test func hangingServerFailsWithinTheLowSpeedBound() throws {
        defer { removeTree(cache.directory) }
        let records = try hello(index(mode: "hang"))
        #expect {
            try cache.fetch(records)
        } throws: { error in
            guard case let .transfer(url, package, message, _) = error as? PackageError else { return false }
            // libcurl's low-speed abort: "Operation too slow. Less than N bytes/sec transferred the last M seconds".
            return url == records[0].url && package == "kiln-hello" && message.lowercased().contains("too slow")
        }
        // "too slow" is libcurl's low-speed abort, not the server's own 30 s stall ending the transfer.
        #expect(cache.cachedDeb(sha256: records[0].sha256, size: records[0].size) == nil)
    }

    @Test func missingPackageSuggestsTheNearName() throws {
        defer { removeTree(cache.directory) }
        // kiln-hello is one edit away and comes first; kiln-shell is two away and may follow.
        #expect(throws: PackageError.packageNotFound(name: "kiln-helo", suggestions: ["kiln-hello", "kiln-shell"])) {
            try index().resolve(["kiln-helo"], followDepends: true)
        }
        #expect(throws: PackageError.unsatisfiableDependency(package: "kiln-broken 1.0",
                                                             dependency: "kiln-nowhere | kiln-nothing (>= 2)")) {
            try index().resolve(["kiln-broken"], followDepends: true)
        }
    }
}

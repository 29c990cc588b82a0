import Foundation
import Testing
@testable import KilnPackages

/// Resolves and downloads real packages from the repository in the host's apt configuration.
/// Off by default: set KILN_NETWORK_TESTS=1 to run it. KILN_NETWORK_CACHE keeps the cache between runs.
@Suite("host repository", .enabled(if: ProcessInfo.processInfo.environment["KILN_NETWORK_TESTS"] == "1"))
struct HostRepositoryTests {
    @Test func resolvesAndFetchesTheCloudKernel() throws {
        let environment = ProcessInfo.processInfo.environment
        let directory = try environment["KILN_NETWORK_CACHE"] ?? makeTempDirectory("host")
        defer { if environment["KILN_NETWORK_CACHE"] == nil { removeTree(directory) } }
        let cache = PackageCache(directory: directory, logger: testLogger)
        let sources = try AptConfiguration.sources()
        var clock = Date()
        let index = try RepositoryClient(sources: sources, cache: cache, logger: testLogger).loadIndex()
        let loadSeconds = Date().timeIntervalSince(clock)
        clock = Date()
        let records = try index.resolve(["linux-image-cloud-amd64", "libc6", "libnftables1"], followDepends: true)
        let resolveSeconds = Date().timeIntervalSince(clock)
        let kernel = try #require(records.first { $0.name.hasPrefix("linux-image-") && $0.name.hasSuffix("-cloud-amd64")
            && $0.name != "linux-image-cloud-amd64" })
        clock = Date()
        let paths = try cache.fetch(records, parallel: 4, progress: ProgressReporters.automatic())
        let fetchSeconds = Date().timeIntervalSince(clock)
        clock = Date()
        let again = try cache.ensure(records.map(\.locked), sources: sources)
        let warmSeconds = Date().timeIntervalSince(clock)
        #expect(again == paths)
        #expect(records.contains { $0.name == "libnftables1" })
        #expect(index.sourceDateEpoch > 1_600_000_000)
        let bytes = records.reduce(0) { $0 + $1.size }
        // The largest index on its own: decompression and parsing timed apart.
        let indices = cache.directory + "/indices"
        let largest = try #require(try FileManager.default.contentsOfDirectory(atPath: indices)
            .max { (fileSize(indices + "/" + $0) ?? 0) < (fileSize(indices + "/" + $1) ?? 0) })
        clock = Date()
        let text = try Decompressor.contents(of: indices + "/" + largest)
        let decompressSeconds = Date().timeIntervalSince(clock)
        clock = Date()
        let stanzas = PackagesParser.parse(text, origin: 0)
        let parseSeconds = Date().timeIntervalSince(clock)
        #expect(stanzas.count > 60_000)
        print("largest index: \(text.count / 1_000_000) MB, \(stanzas.count) stanzas; xz \(String(format: "%.2f", decompressSeconds)) s, parse \(String(format: "%.2f", parseSeconds)) s")
        print("""
            host repository: \(index.count) packages from \(index.suites.joined(separator: " ")) in \
            \(String(format: "%.2f", loadSeconds)) s; resolved \(records.count) packages \
            (\(bytes / 1_000_000) MB) in \(String(format: "%.3f", resolveSeconds)) s; \
            kernel \(kernel.name) \(kernel.version) [\(kernel.suite)]; fetched in \(String(format: "%.1f", fetchSeconds)) s; \
            warm ensure \(String(format: "%.3f", warmSeconds)) s; SOURCE_DATE_EPOCH \(index.sourceDateEpoch)
            """)
    }
}

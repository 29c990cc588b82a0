import Foundation
import Logging

/// A content-addressed store of verified downloads: `debs/<sha256>.deb` and `indices/<sha256>` under
/// `$XDG_CACHE_HOME/kiln` (default `~/.cache/kiln`). A file gets its final name only after its size and SHA-256
/// were checked, by rename(2), so a corrupt or partial download never looks cached.
public final class PackageCache: Sendable {
    public let directory: String
    public let options: DownloadOptions
    let logger: Logger

    public init(directory: String? = nil, options: DownloadOptions = DownloadOptions(),
                logger: Logger = Logger(label: "kiln.packages")) {
        self.directory = directory ?? Self.defaultDirectory()
        self.options = options
        self.logger = logger
    }

    /// `$XDG_CACHE_HOME/kiln`, else `$HOME/.cache/kiln`.
    public static func defaultDirectory() -> String {
        let environment = ProcessInfo.processInfo.environment
        if let xdg = environment["XDG_CACHE_HOME"], xdg.hasPrefix("/") { return xdg + "/kiln" }
        let home = environment["HOME"] ?? NSHomeDirectory()
        return home + "/.cache/kiln"
    }

    var debsDirectory: String { directory + "/debs" }
    var indicesDirectory: String { directory + "/indices" }
    var workDirectory: String { directory + "/tmp" }

    /// Where the .deb with this SHA-256 lives once cached.
    /// Removes what interrupted Kiln processes left in the cache (see `Leftovers`); returns the paths removed.
    @discardableResult
    public func sweepLeftovers() -> [String] {
        ([directory] + ["debs", "indices", "tmp", "trees", "roots", "layers"].map { directory + "/" + $0 }).flatMap(Leftovers.sweep)
    }

    public func debPath(sha256: String) -> String {
        debsDirectory + "/\(sha256.lowercased()).deb"
    }

    /// The cached .deb for `sha256`, if present with the right size (content addressing vouches for the rest).
    public func cachedDeb(sha256: String, size: Int) -> String? {
        let path = debPath(sha256: sha256)
        return fileSize(path) == size ? path : nil
    }

    /// Downloads every record not yet cached (up to `parallel` at once) and returns name → local .deb path.
    public func fetch(_ records: [PackageRecord], parallel: Int = 4,
                      progress: any ProgressReporter = SilentProgress()) throws -> [String: String] {
        let jobs = records.map { DownloadJob(name: $0.name, size: $0.size, sha256: $0.sha256, urls: [$0.url]) }
        return try run(jobs, parallel: parallel, progress: progress)
    }

    /// The local .deb of every locked package, downloading only what the cache lacks. URLs are each source's
    /// base URI + the pool filename, the sources carrying the package's suite first; with a warm cache this
    /// touches no network at all.
    public func ensure(_ packages: [LockedPackage], sources: [AptSource], parallel: Int = 4,
                       progress: any ProgressReporter = SilentProgress()) throws -> [String: String] {
        let jobs = packages.map { package in
            let ordered = sources.filter { $0.suites.contains(package.suite) } + sources.filter { !$0.suites.contains(package.suite) }
            var urls: [String] = []
            for source in ordered {
                for uri in source.uris where !urls.contains(joinURL(uri, package.filename)) {
                    urls.append(joinURL(uri, package.filename))
                }
            }
            return DownloadJob(name: package.name, size: package.size, sha256: package.sha256, urls: urls)
        }
        return try run(jobs, parallel: parallel, progress: progress)
    }

    private func run(_ jobs: [DownloadJob], parallel: Int, progress: any ProgressReporter) throws -> [String: String] {
        var result: [String: String] = [:]
        var missing: [DownloadJob] = []
        var seen: Set<String> = []
        for job in jobs {
            if let path = cachedDeb(sha256: job.sha256, size: job.size) {
                result[job.name] = path
            } else if seen.insert(job.sha256.lowercased()).inserted {
                missing.append(job)
            }
        }
        if missing.isEmpty { return result }
        try makeDirectory(debsDirectory)
        logger.info("downloading packages", metadata: ["count": "\(missing.count)",
                                                       "bytes": "\(missing.reduce(0) { $0 + $1.size })"])
        let pool = DownloadPool(jobs: missing, cache: self, progress: progress)
        _ = try pool.run(workers: max(1, min(parallel, missing.count)))
        for job in jobs { result[job.name] = debPath(sha256: job.sha256) }
        return result
    }

    /// Downloads one job on `handle`: each URL in turn until one is not a 404, then verify and install.
    func download(_ job: DownloadJob, handle: CurlHandle, progress: ((Int64) -> Void)?) throws -> String {
        let final = debPath(sha256: job.sha256)
        let partial = final + ".partial"
        // Another Kiln process may be fetching the same file: the partial's lock serialises them.
        let lockFD = try Leftovers.lockPartial(partial)
        defer { close(lockFD) }
        if let done = cachedDeb(sha256: job.sha256, size: job.size) { return done }
        let downloader = Downloader(options: options, logger: logger)
        var lastError: Error = PackageError.transfer(url: "(none)", package: job.name,
                                                     message: "no repository URI to fetch from", attempts: 0)
        for url in job.urls {
            do {
                try downloader.download(url, to: partial, expectedSize: job.size, package: job.name, handle: handle,
                                        progress: progress)
                try Downloader.install(partial, as: final, size: job.size, sha256: job.sha256, package: job.name, url: url)
                logger.debug("cached package", metadata: ["package": "\(job.name)", "url": "\(url)"])
                return final
            } catch let error as PackageError {
                lastError = error
                if case let .httpStatus(_, _, status, _) = error, status == 404 || status == 410 {
                    unlink(partial)
                    continue
                }
                throw error
            }
        }
        throw lastError
    }
}

/// One .deb to fetch: its name (for messages), expected size and hash, and the URLs to try in order.
struct DownloadJob: Sendable {
    var name: String
    var size: Int
    var sha256: String
    var urls: [String]
}

/// Runs download jobs on a few threads, each with its own curl handle. After the first failure no new job
/// starts; the first error is rethrown once every thread has stopped.
final class DownloadPool: @unchecked Sendable {
    private let jobs: [DownloadJob]
    private let cache: PackageCache
    private let reporter: any ProgressReporter
    private let tracker: ProgressTracker
    private let lock = NSLock()
    private var next = 0
    private var results: [String: String] = [:]
    private var firstError: Error?

    init(jobs: [DownloadJob], cache: PackageCache, progress: any ProgressReporter) {
        self.jobs = jobs
        self.cache = cache
        reporter = progress
        tracker = ProgressTracker(reporter: progress, totalBytes: Int64(jobs.reduce(0) { $0 + $1.size }),
                                  totalItems: jobs.count)
    }

    func run(workers: Int) throws -> [String: String] {
        let group = DispatchGroup()
        for _ in 0..<workers {
            group.enter()
            let thread = Thread { [self] in
                work()
                group.leave()
            }
            thread.name = "kiln-download"
            thread.start()
        }
        group.wait()
        reporter.finish(success: firstError == nil)
        if let firstError { throw firstError }
        return results
    }

    private func take() -> (Int, DownloadJob)? {
        lock.lock()
        defer { lock.unlock() }
        guard firstError == nil, next < jobs.count else { return nil }
        next += 1
        return (next - 1, jobs[next - 1])
    }

    private func work() {
        let handle: CurlHandle
        do {
            handle = try CurlHandle()
        } catch {
            record(error: error)
            return
        }
        while let (index, job) = take() {
            do {
                let path = try cache.download(job, handle: handle) { [tracker] bytes in
                    tracker.bytes(bytes, item: index, name: job.name)
                }
                tracker.completed(item: index, size: Int64(job.size), name: job.name)
                lock.lock()
                results[job.name] = path
                lock.unlock()
            } catch {
                record(error: error)
            }
        }
    }

    private func record(error: Error) {
        lock.lock()
        if firstError == nil { firstError = error }
        lock.unlock()
        cache.logger.error("download failed", metadata: ["error": "\(error)"])
    }
}

extension PackageCache {
    /// Every Packages index already in the cache, merged, without touching the network; nil when there is none.
    ///
    /// The cache keeps an index under the SHA-256 its signed Release gave it, so without fetching the Release it
    /// cannot tell which suite an index is for: this answers "does any cached index know this name", which is
    /// what validation needs before a build resolves for real.
    public func cachedIndex(architecture: String = "amd64") -> PackageIndex? {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: indicesDirectory) else { return nil }
        let plain = names.filter { $0.count == 64 && $0.allSatisfy(\.isHexDigit) }.sorted()
        var entries: [IndexEntry] = []
        for name in plain {
            guard let bytes = try? readFileBytes(indicesDirectory + "/" + name) else { continue }
            entries += PackagesParser.parse(bytes, origin: 0).filter { $0.architecture == architecture || $0.architecture == "all" }
        }
        guard !entries.isEmpty else { return nil }
        return PackageIndex(entries: entries, origins: [IndexOrigin(baseURI: "", suite: "")], releaseDates: [], suites: [])
    }
}

import Foundation
import Logging

/// Reads the package indices of the configured repositories: fetches each suite's InRelease, verifies it with
/// gpgv, and loads the Packages index the verified Release vouches for (from the cache when unchanged).
public final class RepositoryClient {
    public let sources: [AptSource]
    public let cache: PackageCache
    private let logger: Logger
    private let handle: CurlHandle

    public init(sources: [AptSource], cache: PackageCache, logger: Logger) throws {
        self.sources = sources
        self.cache = cache
        self.logger = logger
        handle = try CurlHandle()
    }

    /// The merged index of every suite and component of every source that serves `architecture`.
    public func loadIndex(architecture: String = "amd64") throws -> PackageIndex {
        try makeDirectory(cache.indicesDirectory)
        try makeDirectory(cache.workDirectory)
        var entries: [IndexEntry] = []
        var origins: [IndexOrigin] = []
        var dates: [Int] = []
        var suites: [String] = []
        for source in sources where source.serves(architecture: architecture) {
            for suite in source.suites {
                let (uri, release) = try fetchRelease(source: source, suite: suite)
                dates.append(release.date)
                suites.append(suite)
                let origin = origins.count
                origins.append(IndexOrigin(baseURI: uri, suite: suite))
                for component in source.components.isEmpty ? ["main"] : source.components {
                    let started = Date()
                    let bytes = try indexBytes(uri: uri, suite: suite, component: component,
                                               architecture: architecture, release: release)
                    let parsed = PackagesParser.parse(bytes, origin: origin)
                    logger.debug("parsed index", metadata: [
                        "suite": "\(suite)", "component": "\(component)", "packages": "\(parsed.count)",
                        "bytes": "\(bytes.count)", "seconds": "\(Date().timeIntervalSince(started))"])
                    entries += parsed.filter { $0.architecture == architecture || $0.architecture == "all" }
                }
            }
        }
        return PackageIndex(entries: entries, origins: origins, releaseDates: dates, suites: suites)
    }

    /// Fetches and verifies `dists/<suite>/InRelease` from the first URI of `source` that answers.
    private func fetchRelease(source: AptSource, suite: String) throws -> (uri: String, release: ReleaseFile) {
        var lastError: Error = PackageError.noSources(distribution: suite, searched: [])
        for uri in source.uris {
            let url = joinURL(uri, "dists/\(suite)/InRelease")
            let temp = cache.workDirectory + "/InRelease-\(UUID().uuidString)"
            defer { unlink(temp) }
            do {
                try Downloader(options: cache.options, logger: logger)
                    .download(url, to: temp, expectedSize: nil, package: nil, handle: handle)
                let verified = try SignatureVerifier(workDirectory: cache.workDirectory)
                    .verify(inRelease: temp, keyring: source.keyring, url: url)
                let release = try ReleaseFile(text: verified, url: url)
                guard release.describes(suite: suite) else {
                    throw PackageError.malformedRelease(url: url, reason:
                        "describes suite '\(release.suite ?? "?")' / codename '\(release.codename ?? "?")', not '\(suite)'")
                }
                logger.debug("verified release", metadata: ["url": "\(url)", "date": "\(release.date)"])
                return (uri, release)
            } catch let error as PackageError {
                lastError = error
                if case .httpStatus = error, source.uris.count > 1 { continue }
                if case .transfer = error, source.uris.count > 1 { continue }
                throw error
            }
        }
        throw lastError
    }

    /// The verified, uncompressed Packages index of one component. The first time, the compressed form
    /// (`Packages.xz`, else `.gz`) is downloaded and checked against the Release; its decompressed text is then
    /// checked against the Release's entry for the plain `Packages` and kept under that hash, so later loads
    /// neither download nor decompress anything.
    private func indexBytes(uri: String, suite: String, component: String, architecture: String,
                            release: ReleaseFile) throws -> [UInt8] {
        let stem = "\(component)/binary-\(architecture)/Packages"
        let plain = release.sha256[stem]
        if let plain, fileSize(cache.indicesDirectory + "/" + plain.sha256) == plain.size {
            logger.debug("index cached", metadata: ["suite": "\(suite)", "file": "\(stem)"])
            return try readFileBytes(cache.indicesDirectory + "/" + plain.sha256)
        }
        guard let (name, entry) = [stem + ".xz", stem + ".gz", stem]
            .lazy.compactMap({ name in release.sha256[name].map { (name, $0) } }).first
        else {
            throw PackageError.indexNotListed(url: joinURL(uri, "dists/\(suite)/InRelease"), path: stem)
        }
        let url = joinURL(uri, "dists/\(suite)/\(name)")
        let compressed = cache.indicesDirectory + "/" + entry.sha256
        if fileSize(compressed) != entry.size {
            let partial = compressed + ".partial"
            let lockFD = try Leftovers.lockPartial(partial)
            defer { close(lockFD) }
            try Downloader(options: cache.options, logger: logger)
                .download(url, to: partial, expectedSize: entry.size, package: nil, handle: handle)
            try Downloader.install(partial, as: compressed, size: entry.size, sha256: entry.sha256,
                                   package: "\(suite)/\(name)", url: url)
        }
        let bytes = name == stem ? try readFileBytes(compressed) : try Decompressor.contents(of: compressed)
        guard let plain, name != stem else { return bytes }
        let actual = sha256Hex(of: bytes)
        guard bytes.count == plain.size, actual == plain.sha256 else {
            unlink(compressed)
            throw PackageError.hashMismatch(package: "\(suite)/\(stem)", url: url, expected: plain.sha256, actual: actual)
        }
        try writeAtomically(Data(bytes), to: cache.indicesDirectory + "/" + plain.sha256)
        unlink(compressed)
        return bytes
    }
}

import Crypto
import Foundation
import Logging

/// Time limits and retry policy for downloads. A server that sends less than `lowSpeedLimit` bytes per second for
/// `lowSpeedTime` seconds is given up on, so a hanging server fails in bounded time.
public struct DownloadOptions: Sendable {
    public var connectTimeout: Int
    public var lowSpeedLimit: Int
    public var lowSpeedTime: Int
    /// How often a transfer is tried in all (transient errors only; a 404 is final at once).
    public var attempts: Int
    /// Seconds before the first retry; doubled each time up to `maxBackoff`.
    public var initialBackoff: Double
    public var maxBackoff: Double

    public init(connectTimeout: Int = 20, lowSpeedLimit: Int = 1024, lowSpeedTime: Int = 30, attempts: Int = 4,
                initialBackoff: Double = 1, maxBackoff: Double = 16) {
        self.connectTimeout = connectTimeout
        self.lowSpeedLimit = lowSpeedLimit
        self.lowSpeedTime = lowSpeedTime
        self.attempts = attempts
        self.initialBackoff = initialBackoff
        self.maxBackoff = maxBackoff
    }
}

/// Fetches one URL into a `.partial` file with resume and retries, then checks it and renames it into place.
struct Downloader {
    let options: DownloadOptions
    let logger: Logger

    /// curl codes worth another try: connect failures, timeouts, resets, short bodies.
    private static let transientCodes: Set<Int> = [5, 6, 7, 16, 18, 28, 35, 52, 55, 56, 92]

    /// Downloads `url` to `partial`, resuming what is already there. `expectedSize`, when known, lets a complete
    /// partial skip the network and an oversized one start over.
    func download(_ url: String, to partial: String, expectedSize: Int?, package: String?, handle: CurlHandle,
                  progress: ((Int64) -> Void)? = nil) throws {
        var attempt = 0
        var backoff = options.initialBackoff
        while true {
            attempt += 1
            var existing = Int64(fileSize(partial) ?? 0)
            if let expectedSize, existing >= Int64(expectedSize) {
                if existing == Int64(expectedSize) { return }
                unlink(partial)
                existing = 0
            }
            let fd = open(partial, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw PackageError.io(path: partial, message: String(cString: strerror(errno))) }
            let sink = TransferSink(fd: fd) { progress?(existing + $0) }
            let outcome = handle.get(url, into: sink, resumeFrom: existing, options: options)
            close(fd)
            let error: PackageError
            var retryNow = false
            switch outcome {
            case .success:
                return
            case let .httpError(status) where status == 416:
                // Range not satisfiable: the partial is stale. Start over from zero.
                unlink(partial)
                error = .httpStatus(url: url, package: package, status: status, attempts: attempt)
                retryNow = true
            case let .httpError(status):
                error = .httpStatus(url: url, package: package, status: status, attempts: attempt)
                guard status >= 500 || status == 408 || status == 429 else { throw error }
            case let .failure(code, message) where code == 33:
                // The server ignored the Range request; drop the partial and fetch the whole file.
                unlink(partial)
                error = .transfer(url: url, package: package, message: message, attempts: attempt)
                retryNow = true
            case let .failure(code, message):
                error = .transfer(url: url, package: package, message: message, attempts: attempt)
                guard Self.transientCodes.contains(code) else { throw error }
            }
            guard attempt < options.attempts else { throw error }
            if !retryNow {
                logger.info("retrying download", metadata: [
                    "url": "\(url)", "attempt": "\(attempt + 1)", "after": "\(backoff)s", "error": "\(error)"])
                Thread.sleep(forTimeInterval: backoff)
                backoff = min(backoff * 2, options.maxBackoff)
            }
        }
    }

    /// Checks a finished partial against the expected size and SHA-256 and renames it to `final`. On mismatch the
    /// partial is deleted, so nothing unverified ever takes a cache name.
    static func install(_ partial: String, as final: String, size: Int, sha256: String, package: String,
                        url: String) throws {
        let actualSize = fileSize(partial) ?? -1
        guard actualSize == size else {
            unlink(partial)
            throw PackageError.sizeMismatch(package: package, url: url, expected: size, actual: actualSize)
        }
        let actual = try sha256Hex(ofFile: partial)
        guard actual == sha256.lowercased() else {
            unlink(partial)
            throw PackageError.hashMismatch(package: package, url: url, expected: sha256, actual: actual)
        }
        guard rename(partial, final) == 0 else {
            throw PackageError.io(path: final, message: "rename failed: \(String(cString: strerror(errno)))")
        }
    }
}

/// The size of a regular file, or nil if it does not exist.
func fileSize(_ path: String) -> Int? {
    var info = stat()
    guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
    return Int(info.st_size)
}

/// The lower-case hex SHA-256 of a file, read in 1 MiB chunks.
func sha256Hex(ofFile path: String) throws -> String {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw PackageError.io(path: path, message: String(cString: strerror(errno))) }
    defer { close(fd) }
    var hasher = SHA256()
    var buffer = [UInt8](repeating: 0, count: 1 << 20)
    while true {
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if count < 0 {
            if errno == EINTR { continue }
            throw PackageError.io(path: path, message: String(cString: strerror(errno)))
        }
        if count == 0 { break }
        buffer.withUnsafeBytes { hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
    }
    return hasher.finalize().map { String(format: "%02x", $0) }.joined()
}

/// The lower-case hex SHA-256 of bytes in memory.
func sha256Hex(of bytes: [UInt8]) -> String {
    SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
}

/// The whole content of a file, read with read(2) into one buffer.
func readFileBytes(_ path: String) throws -> [UInt8] {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw PackageError.io(path: path, message: String(cString: strerror(errno))) }
    defer { close(fd) }
    let size = fileSize(path) ?? 0
    var bytes = [UInt8](repeating: 0, count: size)
    var done = 0
    while done < size {
        let count = bytes.withUnsafeMutableBytes { buffer -> Int in
            guard let base = buffer.baseAddress else { return 0 }
            return read(fd, base + done, size - done)
        }
        if count < 0 && errno == EINTR { continue }
        guard count > 0 else { throw PackageError.io(path: path, message: "short read at byte \(done) of \(size)") }
        done += count
    }
    return bytes
}

/// Creates `path` and its parents.
func makeDirectory(_ path: String) throws {
    do {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    } catch {
        throw PackageError.io(path: path, message: "cannot create directory: \(error.localizedDescription)")
    }
}

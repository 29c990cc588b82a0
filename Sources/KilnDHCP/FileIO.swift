import Glibc

/// A failed file operation: which call, which path, and errno's text.
public struct FileError: Error, Equatable, Sendable, CustomStringConvertible {
    public var operation: String
    public var path: String
    public var errno: Int32
    public var description: String { "\(operation) \(path): \(String(cString: strerror(errno)))" }
}

@inline(__always) private func retrying(_ body: () -> Int) -> Int {
    while true {
        let r = body()
        if r >= 0 || errno != EINTR { return r }
    }
}

/// Reads a whole file (config or lease file; both are small).
func readFile(_ path: String) throws(FileError) -> [UInt8] {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw FileError(operation: "open", path: path, errno: errno) }
    defer { close(fd) }
    var out: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = chunk.withUnsafeMutableBytes { buf in retrying { read(fd, buf.baseAddress, buf.count) } }
        if n < 0 { throw FileError(operation: "read", path: path, errno: errno) }
        if n == 0 { return out }
        out += chunk[0..<n]
        if out.count > 64 << 20 { throw FileError(operation: "read", path: path, errno: EFBIG) }
    }
}

/// Writes `bytes` to `path.tmp`, fsyncs, and renames it over `path`, so a reader sees the old file or the new one.
func writeFileAtomically(_ path: String, _ bytes: [UInt8]) throws(FileError) {
    let tmp = path + ".tmp"
    let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw FileError(operation: "open", path: tmp, errno: errno) }
    var offset = 0
    while offset < bytes.count {
        let n = bytes.withUnsafeBytes { buf in retrying { write(fd, buf.baseAddress! + offset, buf.count - offset) } }
        if n < 0 { let e = errno; close(fd); unlink(tmp); throw FileError(operation: "write", path: tmp, errno: e) }
        offset += n
    }
    if fsync(fd) != 0 { let e = errno; close(fd); unlink(tmp); throw FileError(operation: "fsync", path: tmp, errno: e) }
    close(fd)
    guard rename(tmp, path) == 0 else { let e = errno; unlink(tmp); throw FileError(operation: "rename", path: path, errno: e) }
}

/// Creates a directory and its parents (`mkdir -p`).
func makeDirectories(_ path: String) {
    var prefix = path.hasPrefix("/") ? "" : "."
    for part in path.split(separator: "/") {
        prefix += "/" + part
        mkdir(prefix, 0o755)
    }
}

/// Seconds since the epoch: lease expiries are stored as wall-clock times so they survive a restart.
func wallClockSeconds() -> Int64 { Int64(time(nil)) }

/// rename(2), best effort (moving a corrupt lease file aside).
func renameFile(_ from: String, _ to: String) { _ = rename(from, to) }

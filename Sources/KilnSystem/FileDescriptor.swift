import CKilnShims
import Glibc

/// The owner of one open file descriptor: closes it exactly once, in `close()` or at deinit.
///
/// A class, not a `~Copyable` struct, so owners can sit in arrays and dictionaries (a supervisor's pipes, the
/// runtime's TUN devices). Not `Sendable`: to hand the descriptor to another thread, `release()` it and adopt
/// the raw value there.
public final class FileDescriptor {
    /// The raw descriptor, or -1 once closed or released.
    public private(set) var rawValue: Int32

    /// Takes ownership of an already open descriptor.
    public init(adopting rawValue: Int32) {
        self.rawValue = rawValue
    }

    deinit {
        if rawValue >= 0 { _ = Glibc.close(rawValue) }
    }

    /// Open flags, a thin wrapper over `O_*` (`O_CLOEXEC` is always added).
    public struct Flags: OptionSet, Sendable {
        public let rawValue: Int32
        public init(rawValue: Int32) { self.rawValue = rawValue }
        public static let readOnly = Flags(rawValue: O_RDONLY)
        public static let writeOnly = Flags(rawValue: O_WRONLY)
        public static let readWrite = Flags(rawValue: O_RDWR)
        public static let create = Flags(rawValue: O_CREAT)
        public static let truncate = Flags(rawValue: O_TRUNC)
        public static let exclusive = Flags(rawValue: O_EXCL)
        public static let append = Flags(rawValue: O_APPEND)
        public static let nonBlocking = Flags(rawValue: O_NONBLOCK)
        public static let directory = Flags(rawValue: O_DIRECTORY)
        public static let noFollow = Flags(rawValue: O_NOFOLLOW)
    }

    /// open(2) with `O_CLOEXEC`.
    public static func open(_ path: String, _ flags: Flags, mode: mode_t = 0o644) throws(Errno) -> FileDescriptor {
        let fd = try systemCall("open", path) { Glibc.open(path, flags.rawValue | O_CLOEXEC, mode) }
        return FileDescriptor(adopting: fd)
    }

    /// pipe2(2) with `O_CLOEXEC`: (read end, write end).
    public static func pipe() throws(Errno) -> (read: FileDescriptor, write: FileDescriptor) {
        var fds: [Int32] = [-1, -1]
        try shimCall("pipe") { fds.withUnsafeMutableBufferPointer { kiln_pipe_cloexec($0.baseAddress) } }
        return (FileDescriptor(adopting: fds[0]), FileDescriptor(adopting: fds[1]))
    }

    /// Gives up ownership and returns the raw descriptor; this object will no longer close it.
    public func release() -> Int32 {
        let fd = rawValue
        rawValue = -1
        return fd
    }

    /// close(2). Not retried on EINTR: on Linux the descriptor is gone either way.
    public func close() throws(Errno) {
        guard rawValue >= 0 else { return }
        let fd = release()
        if Glibc.close(fd) == -1 && errno != EINTR {
            throw Errno(errno, operation: "close")
        }
    }

    /// One read(2) into `buffer`; returns the count (0 at end of file).
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int {
        try systemCall("read") { Glibc.read(rawValue, buffer.baseAddress, buffer.count) }
    }

    /// One write(2); returns the count written.
    public func write(_ buffer: UnsafeRawBufferPointer) throws(Errno) -> Int {
        try systemCall("write") { Glibc.write(rawValue, buffer.baseAddress, buffer.count) }
    }

    /// Writes every byte, looping over short writes.
    public func writeAll(_ bytes: some Collection<UInt8>) throws(Errno) {
        let array = Array(bytes)
        var offset = 0
        while offset < array.count {
            let n = array.withUnsafeBytes { raw in
                Glibc.write(rawValue, raw.baseAddress.map { $0 + offset }, raw.count - offset)
            }
            if n == -1 && errno == EINTR { continue }
            if n == -1 { throw Errno(errno, operation: "write") }
            offset += n
        }
    }

    /// Writes a string's UTF-8 bytes.
    public func writeAll(_ string: String) throws(Errno) {
        try writeAll(Array(string.utf8))
    }

    /// Reads exactly `count` bytes; an end of file before them is EPIPE.
    public func readExactly(_ count: Int) throws(Errno) -> [UInt8] {
        var result = [UInt8](repeating: 0, count: count)
        var offset = 0
        while offset < count {
            let n = result.withUnsafeMutableBytes { Glibc.read(rawValue, $0.baseAddress! + offset, count - offset) }
            if n == -1 && errno == EINTR { continue }
            if n == -1 { throw Errno(errno, operation: "read") }
            if n == 0 { throw Errno(EPIPE, operation: "read") }
            offset += n
        }
        return result
    }

    /// Reads until end of file, at most `limit` bytes (more is an EFBIG error, not a silent truncation).
    public func readAll(limit: Int = 64 << 20) throws(Errno) -> [UInt8] {
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(rawValue, $0.baseAddress, $0.count) }
            if n == -1 && errno == EINTR { continue }
            if n == -1 { throw Errno(errno, operation: "read") }
            if n == 0 { return result }
            if result.count + n > limit { throw Errno(EFBIG, operation: "read") }
            result.append(contentsOf: chunk[0..<n])
        }
    }
}

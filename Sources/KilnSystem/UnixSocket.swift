import Glibc

/// A local stream socket for a service's control channel (`kiln-vpn show`): the server accepts a connection,
/// writes its answer and closes; clients read to the end under a deadline.
public enum UnixSocket {
    /// Binds and listens on `path` (an old socket file there is replaced), mode 0600.
    public static func listen(_ path: String) throws(Errno) -> FileDescriptor {
        let fd = try systemCall("socket", "unix") { socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
        let owner = FileDescriptor(adopting: fd)
        unlink(path)
        var address = try socketAddress(path)
        let old = umask(0o077)
        defer { umask(old) }
        _ = try withUnsafePointer(to: &address) { p throws(Errno) in
            try p.withMemoryRebound(to: sockaddr.self, capacity: 1) { s throws(Errno) in
                try systemCall("bind", path) { bind(fd, s, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
        }
        try systemCall("listen", path) { Glibc.listen(fd, 8) }
        return owner
    }

    /// Connects to `path`, sends `request` (a line), and reads the answer until the server closes or
    /// `timeoutMs` passes.
    public static func request(_ path: String, _ request: String, timeoutMs: Int = 2000) throws(Errno) -> String {
        let owner = try connect(path, timeoutMs: timeoutMs)
        let fd = owner.rawValue
        let line = Array((request + "\n").utf8)
        _ = line.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 { answer += buffer[0..<n]; continue }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw Errno(errno, operation: "read", subject: path) }
            break
        }
        withExtendedLifetime(owner) {}
        return String(decoding: answer, as: UTF8.self)
    }

    /// A stream connection to `path`, with send and receive timeouts.
    public static func connect(_ path: String, timeoutMs: Int = 2000) throws(Errno) -> FileDescriptor {
        let fd = try systemCall("socket", "unix") { socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
        let owner = FileDescriptor(adopting: fd)
        var timeout = timeval(tv_sec: timeoutMs / 1000, tv_usec: (timeoutMs % 1000) * 1000)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = try socketAddress(path)
        _ = try withUnsafePointer(to: &address) { p throws(Errno) in
            try p.withMemoryRebound(to: sockaddr.self, capacity: 1) { s throws(Errno) in
                try systemCall("connect", path) { Glibc.connect(fd, s, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
        }
        return owner
    }

    private static func socketAddress(_ path: String) throws(Errno) -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { throw Errno(ENAMETOOLONG, operation: "socket path", subject: path) }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        return address
    }
}

import Glibc
import KilnConfig

/// The socket calls the optimizer makes, each wrapped once: non-blocking TCP sockets, IP_TRANSPARENT for
/// the intercepting listener and for connecting from the client's address, and address conversion.
enum TCP {
    static let ipTransparent: Int32 = 19      // IP_TRANSPARENT, <linux/in.h>
    static let ipv6Transparent: Int32 = 75    // IPV6_TRANSPARENT, <linux/in6.h>

    static func failure(_ what: String) -> WANOptError { WANOptError("\(what): \(String(cString: strerror(errno)))") }

    static func socket(family: Int32) throws(WANOptError) -> Int32 {
        let fd = Glibc.socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw failure("socket") }
        return fd
    }

    static func setOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32 = 1) -> Bool {
        var v = value
        return setsockopt(fd, level, name, &v, socklen_t(MemoryLayout<Int32>.size)) == 0
    }

    static func transparent(_ fd: Int32, v6: Bool) -> Bool {
        v6 ? setOption(fd, Int32(IPPROTO_IPV6), ipv6Transparent) : setOption(fd, Int32(IPPROTO_IP), ipTransparent)
    }

    /// A listening socket on `address`; `transparent` accepts connections addressed to anyone (TPROXY).
    static func listen(_ address: SocketAddress, transparent: Bool) throws(WANOptError) -> Int32 {
        let fd = try socket(family: address.ip.isV4 ? AF_INET : AF_INET6)
        _ = setOption(fd, SOL_SOCKET, SO_REUSEADDR)
        if transparent, !Self.transparent(fd, v6: !address.ip.isV4) {
            let error = failure("IP_TRANSPARENT on the intercept socket (needs CAP_NET_ADMIN)")
            close(fd)
            throw error
        }
        guard withSockaddr(address, { bind(fd, $0, $1) }) == 0 else {
            let error = failure("bind \(address)")
            close(fd)
            throw error
        }
        guard Glibc.listen(fd, 512) == 0 else {
            let error = failure("listen on \(address)")
            close(fd)
            throw error
        }
        return fd
    }

    /// Accepts one connection (non-blocking), nil when none is waiting.
    static func accept(_ listener: Int32) -> Int32? {
        let fd = Glibc.accept(listener, nil, nil)
        guard fd >= 0 else { return nil }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        return fd
    }

    /// Starts a connection to `destination`, from `source`'s address when given (transparently: the address
    /// need not be this box's). The socket becomes writable when the connection is up or has failed.
    static func connect(to destination: SocketAddress, from source: IPAddress?) throws(WANOptError) -> Int32 {
        let fd = try socket(family: destination.ip.isV4 ? AF_INET : AF_INET6)
        _ = setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY)
        if let source {
            guard transparent(fd, v6: !source.isV4) else {
                let error = failure("IP_TRANSPARENT for a connection from \(source)")
                close(fd)
                throw error
            }
            // Port 0: the client's own port is still in use by the intercepted connection on this box.
            guard withSockaddr(SocketAddress(ip: source, port: 0), { bind(fd, $0, $1) }) == 0 else {
                let error = failure("bind to client address \(source)")
                close(fd)
                throw error
            }
        }
        let result = withSockaddr(destination) { Glibc.connect(fd, $0, $1) }
        guard result == 0 || errno == EINPROGRESS else {
            let error = failure("connect to \(destination)")
            close(fd)
            throw error
        }
        return fd
    }

    /// The error a non-blocking connect ended with (0 when connected).
    static func pendingError(_ fd: Int32) -> Int32 {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &value, &length) == 0 else { return errno }
        return value
    }

    /// The local address: for a connection accepted through TPROXY, the destination the client asked for.
    static func localAddress(_ fd: Int32) -> SocketAddress? { address(fd, getsockname) }
    static func peerAddress(_ fd: Int32) -> SocketAddress? { address(fd, getpeername) }

    private static func address(
        _ fd: Int32, _ call: (Int32, UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> Int32
    ) -> SocketAddress? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let ok = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { call(fd, $0, &length) }
        }
        guard ok == 0 else { return nil }
        return withUnsafePointer(to: &storage) { (pointer) -> SocketAddress? in
            switch Int32(pointer.pointee.ss_family) {
            case AF_INET:
                return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                    let ip = IPv4Address(UInt32(bigEndian: sin.pointee.sin_addr.s_addr))
                    return SocketAddress(ip: .v4(ip), port: UInt16(bigEndian: sin.pointee.sin_port))
                }
            case AF_INET6:
                return pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin6 in
                    let bytes = withUnsafeBytes(of: sin6.pointee.sin6_addr) { Array($0) }
                    // An IPv4-mapped address (::ffff:a.b.c.d) is the IPv4 address.
                    if bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xff, bytes[11] == 0xff {
                        let v4 = UInt32(bytes[12]) << 24 | UInt32(bytes[13]) << 16 | UInt32(bytes[14]) << 8 | UInt32(bytes[15])
                        return SocketAddress(ip: .v4(IPv4Address(v4)), port: UInt16(bigEndian: sin6.pointee.sin6_port))
                    }
                    return SocketAddress(ip: .v6(IPv6Address(bytes: bytes)), port: UInt16(bigEndian: sin6.pointee.sin6_port))
                }
            default:
                return nil
            }
        }
    }

    static func withSockaddr(_ address: SocketAddress, _ body: (UnsafePointer<sockaddr>, socklen_t) -> Int32) -> Int32 {
        switch address.ip {
        case .v4(let ip):
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = address.port.bigEndian
            sin.sin_addr.s_addr = ip.value.bigEndian
            return withUnsafePointer(to: &sin) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        case .v6(let ip):
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = address.port.bigEndian
            withUnsafeMutableBytes(of: &sin6.sin6_addr) { raw in for i in 0..<16 { raw[i] = ip.bytes[i] } }
            return withUnsafePointer(to: &sin6) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        }
    }
}

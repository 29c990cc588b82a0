import Glibc
import KilnSystem

/// The seam between `NetlinkSession` and the kernel: send one request datagram, receive one reply datagram.
/// `RouteNetlinkSocket` is the real one; tests may replay recorded kernel replies through another.
public protocol NetlinkTransport: AnyObject {
    /// The port id the kernel stamps on replies to this socket.
    var portID: UInt32 { get }
    func send(_ bytes: [UInt8]) throws(Errno)
    /// Receives one datagram into `buffer` and returns its length; a datagram larger than the buffer is an
    /// error (EMSGSIZE), never a silent truncation.
    func receive(into buffer: inout [UInt8]) throws(Errno) -> Int
}

/// Owner of an AF_NETLINK / NETLINK_ROUTE socket, with extended acks on and a receive deadline, so a lost reply
/// cannot hang PID 1.
public final class RouteNetlinkSocket: NetlinkTransport {
    public let fd: FileDescriptor
    public let portID: UInt32

    /// Opens and binds the socket in the calling thread's network namespace. `timeoutSeconds` bounds each
    /// receive (SO_RCVTIMEO).
    public init(timeoutSeconds: Int = 5) throws(Errno) {
        let type = Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        let owner = FileDescriptor(adopting: try systemCall("socket", "AF_NETLINK") { socket(AF_NETLINK, type, 0) })  // NETLINK_ROUTE = 0
        let raw = owner.rawValue
        // SOL_NETLINK = 270: NETLINK_CAP_ACK = 10 (do not echo whole requests), NETLINK_EXT_ACK = 11 (error text).
        for option: Int32 in [10, 11] { try Self.setOption(raw, 270, option, 1) }
        try Self.setOption(raw, SOL_SOCKET, SO_RCVBUF, 1 << 20)
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        try systemCall("setsockopt", "SO_RCVTIMEO") {
            setsockopt(raw, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        }
        // struct sockaddr_nl { sa_family_t nl_family; unsigned short nl_pad; __u32 nl_pid; __u32 nl_groups; }
        var address = SocketAddressNetlink()
        try systemCall("bind", "AF_NETLINK") {
            withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(raw, $0, socklen_t(MemoryLayout<SocketAddressNetlink>.size))
                }
            }
        }
        var length = socklen_t(MemoryLayout<SocketAddressNetlink>.size)
        try systemCall("getsockname", "AF_NETLINK") {
            withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(raw, $0, &length) }
            }
        }
        fd = owner
        portID = address.pid
    }

    public func send(_ bytes: [UInt8]) throws(Errno) {
        let sent = try systemCall("send", "netlink request") {
            bytes.withUnsafeBytes { Glibc.send(fd.rawValue, $0.baseAddress, $0.count, 0) }
        }
        if sent != bytes.count { throw Errno(EMSGSIZE, operation: "send", subject: "netlink request") }
    }

    public func receive(into buffer: inout [UInt8]) throws(Errno) -> Int {
        // MSG_TRUNC makes recv return the datagram's real size, so truncation is detected.
        let count = buffer.count
        let received = try systemCall("receive", "netlink reply") {
            buffer.withUnsafeMutableBytes { recv(fd.rawValue, $0.baseAddress, count, Int32(MSG_TRUNC)) }
        }
        if received > count { throw Errno(EMSGSIZE, operation: "receive", subject: "netlink reply of \(received) bytes") }
        return received
    }

    private static func setOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32) throws(Errno) {
        var value = value
        try systemCall("setsockopt", "socket option \(name)") {
            setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size))
        }
    }
}

/// `struct sockaddr_nl` (12 bytes), which Glibc's Swift module does not import.
private struct SocketAddressNetlink {
    var family = UInt16(AF_NETLINK)
    var pad: UInt16 = 0
    var pid: UInt32 = 0
    var groups: UInt32 = 0
}

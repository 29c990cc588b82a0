import Glibc
import KilnConfig

/// What a TCP connection attempt came to.
enum ConnectOutcome: Equatable {
    case connected
    /// TCP RST or ICMP port unreachable.
    case refused
    /// ICMP host/admin unreachable.
    case unreachable
    case timedOut
    case failed(Int32)
}

func ipv4(_ text: String, _ port: UInt16) -> sockaddr_in {
    var a = sockaddr_in()
    a.sin_family = sa_family_t(AF_INET)
    a.sin_port = port.bigEndian
    _ = inet_pton(AF_INET, text, &a.sin_addr)
    return a
}

func withSockaddr<T>(_ a: sockaddr_in, _ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
    var a = a
    return withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
}

/// A socket bound to `address:port` in the calling thread's namespace; TCP sockets listen (the kernel
/// completes handshakes into the backlog, so no accept loop is needed for a connect to succeed).
func boundSocket(_ address: String, _ port: UInt16, tcp: Bool) throws -> Int32 {
    let fd = socket(AF_INET, Int32(tcp ? SOCK_STREAM.rawValue : SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw ValueError("socket: \(errno)") }
    var one: Int32 = 1
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
    guard withSockaddr(ipv4(address, port), { bind(fd, $0, $1) }) == 0 else { close(fd); throw ValueError("bind \(address):\(port): \(errno)") }
    if tcp, listen(fd, 16) != 0 { close(fd); throw ValueError("listen: \(errno)") }
    return fd
}

/// Connects to `address:port` (from `source` if given) and waits at most `timeoutMs`.
func tcpConnect(_ address: String, _ port: UInt16, from source: String? = nil, timeoutMs: Int32 = 1000) -> ConnectOutcome {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { return .failed(errno) }
    defer { close(fd) }
    if let source, withSockaddr(ipv4(source, 0), { bind(fd, $0, $1) }) != 0 { return .failed(errno) }
    if withSockaddr(ipv4(address, port), { connect(fd, $0, $1) }) == 0 { return .connected }
    guard errno == EINPROGRESS else { return outcome(errno) }
    var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
    let n = poll(&p, 1, timeoutMs)
    guard n > 0 else { return .timedOut }
    var error: Int32 = 0
    var length = socklen_t(MemoryLayout<Int32>.size)
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
    return error == 0 ? .connected : outcome(error)
}

private func outcome(_ e: Int32) -> ConnectOutcome {
    switch e {
    case ECONNREFUSED: return .refused
    case EHOSTUNREACH, ENETUNREACH, EACCES, EPERM: return .unreachable
    case ETIMEDOUT: return .timedOut
    default: return .failed(e)
    }
}

/// The peer address of a connection waiting on listener `fd`, or nil if none arrived within `timeoutMs`.
func acceptedPeer(_ fd: Int32, timeoutMs: Int32 = 1000) -> String? {
    var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
    guard poll(&p, 1, timeoutMs) > 0 else { return nil }
    var peer = sockaddr_in()
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let c = withUnsafeMutablePointer(to: &peer) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { accept(fd, $0, &length) } }
    guard c >= 0 else { return nil }
    close(c)
    return IPv4Address(UInt32(bigEndian: peer.sin_addr.s_addr)).description
}

/// Sends one UDP datagram from `source` to `address:port`.
func udpSend(_ address: String, _ port: UInt16, from source: String, _ payload: String) throws {
    let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw ValueError("socket: \(errno)") }
    defer { close(fd) }
    guard withSockaddr(ipv4(source, 0), { bind(fd, $0, $1) }) == 0 else { throw ValueError("bind \(source): \(errno)") }
    let bytes = Array(payload.utf8)
    let sent = withSockaddr(ipv4(address, port)) { sa, len in bytes.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, 0, sa, len) } }
    guard sent == bytes.count else { throw ValueError("sendto: \(errno)") }
}

/// Every datagram that arrives on `fd` within `timeoutMs`.
func udpReceive(_ fd: Int32, timeoutMs: Int32 = 700) -> [String] {
    receiveAll(fd, timeoutMs: timeoutMs) { String(decoding: $0, as: UTF8.self) }
}

/// Each message that arrives on `fd` until none has for `timeoutMs`, through `describe` (nil skips it).
func receiveAll(_ fd: Int32, timeoutMs: Int32, _ describe: (ArraySlice<UInt8>) -> String?) -> [String] {
    var out: [String] = []
    var buffer = [UInt8](repeating: 0, count: 2048)
    var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
    while poll(&p, 1, timeoutMs) > 0 {
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { break }
        if let line = describe(buffer[0..<n]) { out.append(line) }
    }
    return out
}

/// Sends one TCP segment with only ACK set, as a scanner's `hping3 -A` does, from `source:sourcePort` to
/// `address:port` through a raw socket (the kernel adds the IP header).
func sendBareACK(from source: String, _ sourcePort: UInt16, to address: String, _ port: UInt16) throws {
    let fd = socket(AF_INET, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), Int32(IPPROTO_TCP))
    guard fd >= 0 else { throw ValueError("raw socket: \(errno)") }
    defer { close(fd) }
    guard withSockaddr(ipv4(source, 0), { bind(fd, $0, $1) }) == 0 else { throw ValueError("bind \(source): \(errno)") }
    var segment = [UInt8](repeating: 0, count: 20)
    func put16(_ v: UInt16, _ at: Int) { segment[at] = UInt8(v >> 8); segment[at + 1] = UInt8(v & 0xff) }
    put16(sourcePort, 0)
    put16(port, 2)
    segment[4...7] = [0x12, 0x34, 0x56, 0x78]  // sequence number
    segment[8...11] = [0x0a, 0xbc, 0xde, 0xf0]  // acknowledgement number
    segment[12] = 5 << 4  // header length: five 32-bit words
    segment[13] = 0x10  // ACK
    put16(1024, 14)  // window
    let s = ipv4(source, 0).sin_addr.s_addr, d = ipv4(address, 0).sin_addr.s_addr
    var pseudo = withUnsafeBytes(of: s) { Array($0) } + withUnsafeBytes(of: d) { Array($0) } + [0, UInt8(IPPROTO_TCP), 0, 20]
    pseudo += segment
    var sum: UInt32 = 0
    for i in stride(from: 0, to: pseudo.count, by: 2) { sum += UInt32(pseudo[i]) << 8 | UInt32(pseudo[i + 1]) }
    while sum > 0xffff { sum = (sum & 0xffff) + (sum >> 16) }
    put16(~UInt16(sum), 16)
    let sent = withSockaddr(ipv4(address, port)) { sa, len in segment.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, 0, sa, len) } }
    guard sent == segment.count else { throw ValueError("sendto: \(errno)") }
}

/// A raw socket that sees a copy of every TCP segment arriving in the calling thread's namespace.
func tcpObserver() throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_RAW.rawValue) | Int32(SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), Int32(IPPROTO_TCP))
    guard fd >= 0 else { throw ValueError("raw socket: \(errno)") }
    return fd
}

/// The TCP segments an observer saw within `timeoutMs`, as "source:sport > dport flags 0x…".
func observedSegments(_ fd: Int32, timeoutMs: Int32 = 700) -> [String] {
    receiveAll(fd, timeoutMs: timeoutMs) { packet in
        let b = Array(packet), ihl = Int(b[0] & 0x0f) * 4
        guard b.count >= ihl + 14 else { return nil }
        let source = IPv4Address(UInt32(b[12]) << 24 | UInt32(b[13]) << 16 | UInt32(b[14]) << 8 | UInt32(b[15]))
        let sport = UInt16(b[ihl]) << 8 | UInt16(b[ihl + 1]), dport = UInt16(b[ihl + 2]) << 8 | UInt16(b[ihl + 3])
        return "\(source):\(sport) > \(dport) flags 0x\(String(b[ihl + 13], radix: 16))"
    }
}

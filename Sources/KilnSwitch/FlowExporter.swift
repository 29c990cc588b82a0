import Glibc
import KilnConfig
import KilnSystem

/// The UDP socket flow records leave on: connected to the collector, one IPFIX message per datagram.
final class FlowExporter {
    private let socket: FileDescriptor
    private let domain: UInt32
    private var sequence: UInt32 = 0

    init(collector: Collector, domain: UInt32) throws(Errno) {
        self.domain = domain
        var storage = sockaddr_storage()
        var length: socklen_t
        let family: Int32
        switch collector.address {
        case let .v4(a):
            family = AF_INET
            length = socklen_t(MemoryLayout<sockaddr_in>.size)
            withUnsafeMutableBytes(of: &storage) { raw in
                var sin = sockaddr_in()
                sin.sin_family = sa_family_t(AF_INET)
                sin.sin_port = collector.port.bigEndian
                sin.sin_addr.s_addr = a.value.bigEndian
                raw.storeBytes(of: sin, as: sockaddr_in.self)
            }
        case let .v6(a):
            family = AF_INET6
            length = socklen_t(MemoryLayout<sockaddr_in6>.size)
            withUnsafeMutableBytes(of: &storage) { raw in
                var sin6 = sockaddr_in6()
                sin6.sin6_family = sa_family_t(AF_INET6)
                sin6.sin6_port = collector.port.bigEndian
                withUnsafeMutableBytes(of: &sin6.sin6_addr) { dst in
                    for (i, b) in a.bytes.enumerated() { dst[i] = b }
                }
                raw.storeBytes(of: sin6, as: sockaddr_in6.self)
            }
        }
        let fd = try systemCall("open flow export socket") {
            Glibc.socket(family, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        }
        socket = FileDescriptor(adopting: fd)
        let target = "\(collector.address):\(collector.port)"
        try systemCall("connect flow export socket to", target) {
            withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, length) }
            }
        }
    }

    /// Encodes and sends `records`; a collector that is not listening (ECONNREFUSED) is not an error.
    func send(_ records: [FlowRecord], exportTime: UInt32) throws(Errno) {
        let (messages, next) = IPFIX.encode(records, exportTime: exportTime, sequence: sequence, domain: domain)
        sequence = next
        for message in messages {
            let n = message.withUnsafeBytes { Glibc.send(socket.rawValue, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if n < 0 && errno != ECONNREFUSED && errno != EAGAIN { throw Errno(errno, operation: "send flow records") }
        }
    }
}

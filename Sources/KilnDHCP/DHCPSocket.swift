import Glibc
import KilnConfig

/// A failed socket call on an interface, with errno's text.
public struct DHCPSocketError: Error, CustomStringConvertible {
    public var call: String
    public var interface: String
    public var errno: Int32
    public var description: String { "\(call) on \(interface): \(String(cString: strerror(errno)))" }
}

/// The kernel edge for one interface: a UDP socket on port 67 bound to the device (SO_BINDTODEVICE) with
/// SO_BROADCAST, and a send-only AF_PACKET socket for link-layer unicast to clients without an address.
/// Owns both descriptors; `deinit` closes them.
final class DHCPSocket {
    let interface: InterfaceName
    let serverAddress: IPv4Address
    let udp: Int32
    let packet: Int32
    let ifIndex: Int32
    let ownMAC: [UInt8]

    init(interface: InterfaceName, serverAddress: IPv4Address) throws(DHCPSocketError) {
        self.interface = interface; self.serverAddress = serverAddress
        let name = interface.value
        func fail(_ call: String) -> DHCPSocketError { DHCPSocketError(call: call, interface: name, errno: errno) }
        let index = Int32(bitPattern: if_nametoindex(name))
        guard index > 0 else { throw fail("if_nametoindex") }
        ifIndex = index
        let u = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard u >= 0 else { throw fail("socket(AF_INET)") }
        var one: Int32 = 1
        let sz = socklen_t(MemoryLayout<Int32>.size)
        guard setsockopt(u, SOL_SOCKET, SO_REUSEADDR, &one, sz) == 0, setsockopt(u, SOL_SOCKET, SO_BROADCAST, &one, sz) == 0 else {
            let e = fail("setsockopt"); close(u); throw e
        }
        var dev = Array(name.utf8) + [0]
        guard setsockopt(u, SOL_SOCKET, SO_BINDTODEVICE, &dev, socklen_t(dev.count)) == 0 else {
            let e = fail("setsockopt(SO_BINDTODEVICE)"); close(u); throw e
        }
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_port = DHCPFrame.serverPort.bigEndian
        let bound = withUnsafePointer(to: &sin) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(u, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { let e = fail("bind(0.0.0.0:67)"); close(u); throw e }
        // Protocol 0: this socket only sends, so the kernel queues nothing for it.
        let p = socket(AF_PACKET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard p >= 0 else { let e = fail("socket(AF_PACKET)"); close(u); throw e }
        udp = u; packet = p
        ownMAC = DHCPSocket.hardwareAddress(name)
    }

    deinit { close(udp); close(packet) }

    /// Reads one datagram without blocking; nil when none is waiting.
    func receive(into buffer: inout [UInt8]) -> Int? {
        let n = buffer.withUnsafeMutableBytes { recv(udp, $0.baseAddress, $0.count, 0) }
        return n >= 0 ? n : nil
    }

    /// Sends an encoded reply where `DHCPDestination` says. Returns errno on failure.
    func send(_ payload: [UInt8], to destination: DHCPDestination) -> Int32? {
        switch destination {
        case .broadcast: return sendUDP(payload, to: IPv4Address(0xffff_ffff))
        case let .unicast(a): return sendUDP(payload, to: a)
        case let .hardware(mac, ip):
            let datagram = DHCPFrame.ipv4UDP(source: serverAddress, sourcePort: DHCPFrame.serverPort, destination: ip,
                                             destinationPort: DHCPFrame.clientPort, payload: payload)
            // struct sockaddr_ll (linux/if_packet.h, 20 bytes): family, protocol (network order), ifindex,
            // hatype, pkttype, halen, addr[8]. Glibc's Swift module does not export it, so it is laid out here.
            var ll = [UInt8](repeating: 0, count: 20)
            withUnsafeBytes(of: UInt16(AF_PACKET)) { ll[0] = $0[0]; ll[1] = $0[1] }
            ll[2] = 0x08; ll[3] = 0x00
            withUnsafeBytes(of: ifIndex) { for k in 0..<4 { ll[4 + k] = $0[k] } }
            ll[11] = 6
            for (k, b) in mac.bytes.enumerated() { ll[12 + k] = b }
            let n = datagram.withUnsafeBytes { buf in
                ll.withUnsafeBytes { addr in
                    sendto(packet, buf.baseAddress, buf.count, 0, addr.baseAddress?.assumingMemoryBound(to: sockaddr.self), socklen_t(20))
                }
            }
            return n < 0 ? errno : nil
        }
    }

    private func sendUDP(_ payload: [UInt8], to address: IPv4Address) -> Int32? {
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_port = DHCPFrame.clientPort.bigEndian
        sin.sin_addr.s_addr = address.value.bigEndian
        let n = payload.withUnsafeBytes { buf in
            withUnsafePointer(to: &sin) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(udp, buf.baseAddress, buf.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
        return n < 0 ? errno : nil
    }

    /// The interface's MAC from sysfs, for logs; empty if unreadable.
    static func hardwareAddress(_ name: String) -> [UInt8] {
        guard let bytes = try? readFile("/sys/class/net/\(name)/address"),
              let text = String(validating: bytes.prefix { $0 != 0x0a }, as: UTF8.self),
              let mac = try? MACAddress(text) else { return [] }
        return mac.bytes
    }
}

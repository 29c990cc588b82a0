import KilnConfig
@testable import KilnDHCP

func v4(_ s: String) -> IPv4Address { (try? IPv4Address(s)) ?? IPv4Address(0) }
func macN(_ n: Int) -> MACAddress { MACAddress(bytes: [0x52, 0x54, 0x00, UInt8(n >> 16 & 0xff), UInt8(n >> 8 & 0xff), UInt8(n & 0xff)]) }

/// lan.10: 10.10.0.1/24, pool .100-.109, static 52:54:00:aa:00:01 → .50.
func testInterface(leaseFile: String = "/nonexistent/lan.10.leases", pool: String = "10.10.0.100-10.10.0.109") -> DHCPInterfaceConfig {
    let spec = DHCPSpec(
        pool: (try? IPv4Range(pool)) ?? (try! IPv4Range("10.10.0.100-10.10.0.109")),
        router: v4("10.10.0.1"), dns: [v4("10.10.0.1"), v4("9.9.9.9")], domain: "branch.example", lease: 3600, mtu: 1500,
        routes: [DHCPRouteSpec(to: try! CIDR("10.99.0.0/16"), via: v4("10.10.0.1"))],
        staticLeases: [DHCPStaticLease(mac: try! MACAddress("52:54:00:aa:00:01"), address: v4("10.10.0.50"))])
    return DHCPInterfaceConfig(name: try! InterfaceName("lan.10"), address: try! CIDR("10.10.0.1/24"), spec: spec, leaseFile: leaseFile)
}

func clientPacket(_ type: DHCPMessageType, mac: MACAddress, xid: UInt32 = 0x1234, requested: IPv4Address? = nil,
                  server: IPv4Address? = nil, ciaddr: IPv4Address = IPv4Address(0), broadcast: Bool = false,
                  prl: [UInt8]? = [1, 3, 6, 15, 28, 51, 121]) -> DHCPPacket {
    var p = DHCPPacket()
    p.op = DHCPPacket.bootRequest
    p.xid = xid
    p.chaddr = mac.bytes + Array(repeating: 0, count: 10)
    p.flags = broadcast ? DHCPPacket.broadcastFlag : 0
    p.ciaddr = ciaddr
    p.messageType = type
    p.requestedAddress = requested
    p.serverIdentifier = server
    p.parameterRequestList = prl
    return p
}

/// Collects log lines from an engine.
final class LogSink: @unchecked Sendable {
    var lines: [String] = []
    func add(_ s: String) { lines.append(s) }
    func contains(_ s: String) -> Bool { lines.contains { $0.contains(s) } }
}

func hexBytes(_ s: String) -> [UInt8] {
    let digits = Array(s.filter { $0.isHexDigit })
    return stride(from: 0, to: digits.count - 1, by: 2).compactMap { UInt8(String(digits[$0...$0 + 1]), radix: 16) }
}

import Testing
/// `#require` for expressions with a mutating call, which the macro cannot take.
func must<T>(_ value: T?, sourceLocation: SourceLocation = #_sourceLocation) throws -> T {
    try #require(value, sourceLocation: sourceLocation)
}

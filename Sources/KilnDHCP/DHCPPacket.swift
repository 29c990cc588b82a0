import KilnConfig

/// DHCP message types, option 53 (RFC 2132 §9.6).
public enum DHCPMessageType: UInt8, Sendable, CustomStringConvertible {
    case discover = 1, offer, request, decline, ack, nak, release, inform
    public var description: String {
        switch self {
        case .discover: "DISCOVER"
        case .offer: "OFFER"
        case .request: "REQUEST"
        case .decline: "DECLINE"
        case .ack: "ACK"
        case .nak: "NAK"
        case .release: "RELEASE"
        case .inform: "INFORM"
        }
    }
}

/// Option codes Kiln reads or writes (RFC 2132, RFC 3442).
public enum DHCPOptionCode {
    public static let pad: UInt8 = 0
    public static let subnetMask: UInt8 = 1
    public static let router: UInt8 = 3
    public static let dnsServers: UInt8 = 6
    public static let hostname: UInt8 = 12
    public static let domainName: UInt8 = 15
    public static let interfaceMTU: UInt8 = 26
    public static let broadcastAddress: UInt8 = 28
    public static let requestedAddress: UInt8 = 50
    public static let leaseTime: UInt8 = 51
    public static let overload: UInt8 = 52
    public static let messageType: UInt8 = 53
    public static let serverIdentifier: UInt8 = 54
    public static let parameterRequestList: UInt8 = 55
    public static let message: UInt8 = 56
    public static let maxMessageSize: UInt8 = 57
    public static let renewalTime: UInt8 = 58
    public static let rebindingTime: UInt8 = 59
    public static let clientIdentifier: UInt8 = 61
    public static let classlessStaticRoutes: UInt8 = 121
    public static let end: UInt8 = 255
}

/// One classless static route, option 121 (RFC 3442).
public struct DHCPClasslessRoute: Equatable, Sendable {
    public var destination: IPv4Address
    public var prefixLength: Int
    public var router: IPv4Address
    public init(destination: IPv4Address, prefixLength: Int, router: IPv4Address) {
        self.destination = destination; self.prefixLength = prefixLength; self.router = router
    }
}

/// An option Kiln does not interpret, kept as raw bytes (after RFC 3396 concatenation).
public struct DHCPRawOption: Equatable, Sendable {
    public var code: UInt8
    public var value: [UInt8]
    public init(code: UInt8, value: [UInt8]) { self.code = code; self.value = value }
}

/// A BOOTP/DHCP message (RFC 2131 §2) with its options decoded into typed fields.
/// `DHCPCodec` turns bytes into this and back; nothing here touches a socket.
public struct DHCPPacket: Equatable, Sendable {
    public static let bootRequest: UInt8 = 1
    public static let bootReply: UInt8 = 2
    /// The broadcast bit of `flags` (RFC 2131 §2, figure 2).
    public static let broadcastFlag: UInt16 = 0x8000

    public var op: UInt8 = DHCPPacket.bootRequest
    public var htype: UInt8 = 1
    public var hlen: UInt8 = 6
    public var hops: UInt8 = 0
    public var xid: UInt32 = 0
    public var secs: UInt16 = 0
    public var flags: UInt16 = 0
    public var ciaddr = IPv4Address(0)
    public var yiaddr = IPv4Address(0)
    public var siaddr = IPv4Address(0)
    public var giaddr = IPv4Address(0)
    /// Client hardware address field, always 16 bytes; the first `hlen` are the address.
    public var chaddr: [UInt8] = Array(repeating: 0, count: 16)
    /// `sname` and `file` as sent, unless option 52 said they carry options (then empty).
    public var sname: [UInt8] = []
    public var file: [UInt8] = []

    public var messageType: DHCPMessageType?
    public var subnetMask: IPv4Address?
    public var routers: [IPv4Address] = []
    public var dnsServers: [IPv4Address] = []
    public var hostname: String?
    public var domainName: String?
    public var interfaceMTU: UInt16?
    public var broadcastAddress: IPv4Address?
    public var requestedAddress: IPv4Address?
    public var leaseTime: UInt32?
    public var serverIdentifier: IPv4Address?
    public var parameterRequestList: [UInt8]?
    public var message: String?
    public var maxMessageSize: UInt16?
    public var renewalTime: UInt32?
    public var rebindingTime: UInt32?
    public var clientIdentifier: [UInt8]?
    public var classlessRoutes: [DHCPClasslessRoute]?
    /// Options not listed above, in the order first seen.
    public var otherOptions: [DHCPRawOption] = []

    public init() {}

    public var isBroadcast: Bool { flags & DHCPPacket.broadcastFlag != 0 }

    /// The client's Ethernet address, when `htype`/`hlen` say it is one.
    public var clientMAC: MACAddress? {
        guard htype == 1, hlen == 6 else { return nil }
        return MACAddress(bytes: Array(chaddr[0..<6]))
    }

    /// The key a server stores a lease under: option 61 when present, else hardware type + address
    /// (RFC 2131 §4.2: "client identifier or chaddr").
    public var clientKey: [UInt8] {
        if let id = clientIdentifier { return id }
        let n = min(Int(hlen), 16)
        return [htype] + chaddr[0..<n]
    }
}

import KilnConfig

/// One interface's configuration: keys as base64 text (the form `wg genkey` prints), the UDP port, the
/// interface address and the peers.
public struct VPNConfig: Codable, Sendable, Equatable {
    public struct Peer: Codable, Sendable, Equatable {
        public var publicKey: String
        public var presharedKey: String?
        /// `a.b.c.d:port` or `[v6]:port`; without one the peer is reachable once it has sent to us.
        public var endpoint: String?
        public var allowedIPs: [CIDR]
        /// Seconds between keepalives when idle (nil or 0: off).
        public var persistentKeepalive: Int?

        public init(publicKey: String, presharedKey: String? = nil, endpoint: String? = nil, allowedIPs: [CIDR], persistentKeepalive: Int? = nil) {
            self.publicKey = publicKey
            self.presharedKey = presharedKey
            self.endpoint = endpoint
            self.allowedIPs = allowedIPs
            self.persistentKeepalive = persistentKeepalive
        }
    }

    /// The interface name (default `kiln-vpn0`).
    public var interface: String?
    public var privateKey: String
    public var listenPort: UInt16
    /// Addresses the runtime assigns to the interface.
    public var address: [CIDR]
    public var peers: [Peer]

    public init(interface: String? = nil, privateKey: String, listenPort: UInt16, address: [CIDR], peers: [Peer]) {
        self.interface = interface
        self.privateKey = privateKey
        self.listenPort = listenPort
        self.address = address
        self.peers = peers
    }

    /// The configuration with keys blanked, for logs.
    public var redacted: VPNConfig {
        var copy = self
        copy.privateKey = "(hidden)"
        for i in copy.peers.indices where copy.peers[i].presharedKey != nil { copy.peers[i].presharedKey = "(hidden)" }
        return copy
    }
}

/// A configuration problem, naming the field.
public struct VPNConfigError: Error, CustomStringConvertible, Equatable {
    public var field: String
    public var message: String
    public var description: String { "vpn.\(field): \(message)" }
}

/// Standard base64 (RFC 4648, with padding), the text form of WireGuard keys.
public enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    public static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            let n = min(3, bytes.count - i)
            let b0 = bytes[i], b1 = n > 1 ? bytes[i + 1] : 0, b2 = n > 2 ? bytes[i + 2] : 0
            out.append(alphabet[Int(b0 >> 2)])
            out.append(alphabet[Int((b0 & 3) << 4 | b1 >> 4)])
            out.append(n > 1 ? alphabet[Int((b1 & 15) << 2 | b2 >> 6)] : UInt8(ascii: "="))
            out.append(n > 2 ? alphabet[Int(b2 & 63)] : UInt8(ascii: "="))
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    public static func decode(_ text: String) -> [UInt8]? {
        var values: [UInt8] = []
        var padding = 0
        for c in text.utf8 {
            if c == UInt8(ascii: "=") { padding += 1; continue }
            guard padding == 0, let v = alphabet.firstIndex(of: c) else { return nil }
            values.append(UInt8(v))
        }
        guard (values.count + padding) % 4 == 0 else { return nil }
        var out: [UInt8] = []
        var i = 0
        while i + 1 < values.count {
            out.append(values[i] << 2 | values[i + 1] >> 4)
            if i + 2 < values.count { out.append(values[i + 1] << 4 | values[i + 2] >> 2) }
            if i + 3 < values.count { out.append(values[i + 2] << 6 | values[i + 3]) }
            i += 4
        }
        return out
    }

    /// A 32-byte key, or an error naming `field`.
    static func key(_ text: String, field: String) throws(VPNConfigError) -> [UInt8] {
        guard let bytes = decode(text), bytes.count == 32 else {
            throw VPNConfigError(field: field, message: "not a base64 32-byte key")
        }
        return bytes
    }
}

extension Endpoint {
    /// Parses `a.b.c.d:port` or `[v6]:port`. An IPv6 address needs its brackets: in `2001:db8::1:51820` the
    /// port could be the address's last group.
    public init(parsing text: String) throws(ValueError) {
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]) else {
            throw ValueError("'\(text)' is not host:port")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") {
            host = String(host.dropFirst().dropLast())
        } else if host.contains(":") {
            throw ValueError("'\(text)': an IPv6 endpoint needs brackets, as in [2001:db8::1]:51820")
        }
        self.init(address: try IPAddress(host).bytes, port: port)
    }
}

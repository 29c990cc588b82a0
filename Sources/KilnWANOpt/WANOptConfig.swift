import KilnDedup
import KilnConfig

/// The WAN optimizer service's configuration, compiled by the builder from the manifest's `wanopt:` section
/// and written to `/etc/kiln/wanopt.json` in the image (the key itself stays in its own file).
public struct WANOptConfig: Codable, Sendable, Equatable {
    /// Libraries the service opens at run time rather than links; an image with the service carries them.
    public static let runtimeLibraries = [Zstd.path]

    public static let defaultPath = "/etc/kiln/wanopt.json"

    /// A label for logs and status (e.g. "branch", "dc").
    public var name: String
    /// Interfaces whose incoming TCP connections are intercepted (the LAN side).
    public var lan: [InterfaceName]
    /// The local port intercepted connections are redirected to (TPROXY).
    public var interceptPort: UInt16
    /// Where this side accepts the peer channel, if it does.
    public var listen: SocketAddress?
    /// The peer to connect the channel to, if this side connects.
    public var peer: SocketAddress?
    /// File holding the pre-shared key (read at start, never logged).
    public var keyFile: String
    /// Connections to these are optimized; the rest pass untouched. An empty list optimizes all TCP.
    public var optimize: [WANOptMatch]
    /// Connections to these always pass untouched (checked before `optimize`).
    public var bypass: [WANOptMatch]
    /// Connect to the destination from the client's address (transparent) rather than from this box's own.
    public var preserveSource: Bool
    /// Firewall mark and routing table that deliver intercepted packets locally.
    public var mark: UInt32
    public var table: UInt32
    /// Priority of the `fwmark → table` rule (before the main table's 32766).
    public var rulePriority: UInt32
    /// Per-flow credit: bytes a sender may have in flight before the receiver has delivered them.
    public var window: UInt32
    /// Longest wait between attempts to reconnect the channel.
    public var reconnectMaxMs: Int
    /// Unix socket answering `status` with one JSON object.
    public var statusSocket: String
    /// The chunk store: a directory and a size bound. Without one, flows are carried as they are (no reduction).
    public var store: WANOptStore?
    /// FastCDC average chunk size (a power of two); both sides must use the same for dedup to find matches.
    public var averageChunkSize: Int
    /// zstd level for chunks the peer has not seen.
    public var compressionLevel: Int

    public init(
        name: String, lan: [InterfaceName], interceptPort: UInt16 = 7810, listen: SocketAddress? = nil,
        peer: SocketAddress? = nil, keyFile: String, optimize: [WANOptMatch] = [], bypass: [WANOptMatch] = [],
        preserveSource: Bool = true, mark: UInt32 = 0x7810, table: UInt32 = 78, rulePriority: UInt32 = 100, window: UInt32 = 256 << 10,
        reconnectMaxMs: Int = 5000, statusSocket: String = "/run/kiln/wanopt.sock",
        store: WANOptStore? = WANOptStore(), averageChunkSize: Int = 8192, compressionLevel: Int = 3
    ) {
        self.name = name; self.lan = lan; self.interceptPort = interceptPort; self.listen = listen; self.peer = peer
        self.keyFile = keyFile; self.optimize = optimize; self.bypass = bypass; self.preserveSource = preserveSource
        self.mark = mark; self.table = table; self.rulePriority = rulePriority; self.window = window; self.reconnectMaxMs = reconnectMaxMs
        self.statusSocket = statusSocket
        self.store = store; self.averageChunkSize = averageChunkSize; self.compressionLevel = compressionLevel
    }
}

/// Where a side keeps the chunks it has sent and received, and how much of them.
public struct WANOptStore: Codable, Sendable, Equatable {
    public var path: String
    public var capacity: Int
    public init(path: String = "/var/lib/kiln/wanopt", capacity: Int = 256 << 20) { self.path = path; self.capacity = capacity }
}

/// Destinations (prefixes) and destination ports; either list empty means any.
public struct WANOptMatch: Codable, Sendable, Equatable {
    public var destinations: [CIDR]
    public var ports: [PortRange]
    public init(destinations: [CIDR] = [], ports: [PortRange] = []) { self.destinations = destinations; self.ports = ports }
}

extension SocketAddress: Codable {
    public init(from decoder: Decoder) throws {
        self = try decodeText(decoder) { text throws(ValueError) in try SocketAddress(text) }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }

    /// `10.0.0.1:7800` or `[2001:db8::1]:7800`.
    public init(_ text: String) throws(ValueError) {
        let host: Substring, port: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                throw ValueError("'\(text)' is not ADDRESS:PORT (IPv6 as [ADDRESS]:PORT)")
            }
            host = text[text.index(after: text.startIndex)..<close]
            port = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":") else { throw ValueError("'\(text)' is not ADDRESS:PORT, e.g. 192.0.2.1:7800") }
            host = text[..<colon]
            port = text[text.index(after: colon)...]
        }
        guard let number = UInt16(port), number > 0 else { throw ValueError("'\(port)' in '\(text)' is not a port (1-65535)") }
        self.init(ip: try IPAddress(String(host)), port: number)
    }
}

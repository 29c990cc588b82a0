import KilnConfig

/// One filter rule. It applies to traffic from zone `from` to zone `to` (`self` is the box itself) and
/// matches every field given; the first matching rule decides. `early: true` rules run for every packet
/// in prerouting before connection tracking (blocklists); they take `from` but no `to`, and only `drop`.
public struct Rule: Codable, Sendable, Equatable {
    public var from: String
    public var to: String?
    public var proto: ProtoList?
    public var sport: PortMatch?
    public var dport: PortMatch?
    public var source: AddressMatch?
    public var destination: AddressMatch?
    public var icmpType: [ICMPType]?
    public var action: Action
    public var log: Bool?
    public var limit: RateLimit?
    public var comment: String?
    public var early: Bool?
    /// nft match statements inserted verbatim before the verdict (an escape hatch, e.g. `meta mark 0x1`);
    /// libnftables checks them at build time and errors name this rule.
    public var raw: String?

    public init(from: String, to: String?, proto: [Proto]? = nil, sport: PortMatch? = nil, dport: PortMatch? = nil,
                source: AddressMatch? = nil, destination: AddressMatch? = nil, icmpType: [ICMPType]? = nil,
                action: Action, log: Bool? = nil, limit: RateLimit? = nil, comment: String? = nil, early: Bool? = nil, raw: String? = nil) {
        self.from = from; self.to = to; self.proto = proto.map(ProtoList.init); self.sport = sport; self.dport = dport
        self.source = source; self.destination = destination; self.icmpType = icmpType; self.action = action
        self.log = log; self.limit = limit; self.comment = comment; self.early = early; self.raw = raw
    }

    enum CodingKeys: String, CodingKey {
        case from, to, proto, sport, dport, source, destination, icmpType = "icmp-type", action, log, limit, comment, early, raw
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        from = try c.decode(String.self, forKey: .from)
        to = try c.decodeIfPresent(String.self, forKey: .to)
        proto = try c.decodeIfPresent(ProtoList.self, forKey: .proto)
        sport = try c.decodeIfPresent(PortMatch.self, forKey: .sport)
        dport = try c.decodeIfPresent(PortMatch.self, forKey: .dport)
        source = try c.decodeIfPresent(AddressMatch.self, forKey: .source)
        destination = try c.decodeIfPresent(AddressMatch.self, forKey: .destination)
        if c.contains(.icmpType) {
            let texts = try decodeOneOrMany(try c.superDecoder(forKey: .icmpType))
            icmpType = []
            for (i, t) in texts.enumerated() {
                do { icmpType?.append(try ICMPType(t)) } catch {
                    throw DecodingError.dataCorrupted(.init(codingPath: c.codingPath + [CodingKeys.icmpType, AnyCodingKey(intValue: i)],
                                                            debugDescription: error.message))
                }
            }
        }
        action = try c.decode(Action.self, forKey: .action)
        log = try c.decodeIfPresent(Bool.self, forKey: .log)
        limit = try c.decodeIfPresent(RateLimit.self, forKey: .limit)
        comment = try c.decodeIfPresent(String.self, forKey: .comment)
        early = try c.decodeIfPresent(Bool.self, forKey: .early)
        raw = try c.decodeIfPresent(String.self, forKey: .raw)
        if let raw, raw.contains(where: { $0 == "\n" || $0 == "\r\n" || $0 == ";" || $0 == "#" }) {
            throw DecodingError.dataCorrupted(.init(codingPath: c.codingPath + [CodingKeys.raw],
                debugDescription: "raw may not contain newlines, ';' or '#': it is part of one rule"))
        }
    }
}

/// A DNAT port forward: traffic arriving from zone `from` for `port` (optionally only to `destination`,
/// one of the box's addresses) goes to `to`, port `to-port` (the same port when omitted).
public struct PortForward: Codable, Sendable, Equatable {
    public var from: String
    public var proto: Proto
    public var port: PortRange
    public var to: IPAddress
    public var toPort: UInt16?
    public var destination: IPAddress?

    public init(from: String, proto: Proto, port: PortRange, to: IPAddress, toPort: UInt16? = nil, destination: IPAddress? = nil) {
        self.from = from; self.proto = proto; self.port = port; self.to = to; self.toPort = toPort; self.destination = destination
    }

    enum CodingKeys: String, CodingKey { case from, proto, port, to, toPort = "to-port", destination }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        from = try c.decode(String.self, forKey: .from)
        proto = try c.decode(Proto.self, forKey: .proto)
        port = try c.decode(PortRange.self, forKey: .port)
        to = try c.decode(IPAddress.self, forKey: .to)
        if c.contains(.toPort) {
            let range = try c.decode(PortRange.self, forKey: .toPort)
            guard range.lower == range.upper else {
                throw DecodingError.dataCorrupted(.init(codingPath: c.codingPath + [CodingKeys.toPort],
                    debugDescription: "to-port must be a single port (\(range) given); omit it to keep the original port"))
            }
            toPort = range.lower
        }
        destination = try c.decodeIfPresent(IPAddress.self, forKey: .destination)
    }
}

/// Static source NAT: traffic leaving zone `out` (optionally only from `source`) gets address `to`.
public struct SourceNAT: Codable, Sendable, Equatable {
    public var out: String
    public var to: IPAddress
    public var source: [CIDR]?
    public init(out: String, to: IPAddress, source: [CIDR]? = nil) { self.out = out; self.to = to; self.source = source }
}

extension Proto {
    public init(from decoder: Decoder) throws {
        self = try decodeText(decoder) { t throws(ValueError) in
            guard let p = Proto(rawValue: t == "ipv6-icmp" ? "icmpv6" : t) else {
                throw ValueError("'\(t)' is not a protocol (expected one of \(Proto.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            return p
        }
    }
}

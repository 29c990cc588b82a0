import KilnConfig

/// A layer-4 protocol a rule matches.
public enum Proto: String, Codable, Sendable, Equatable, CaseIterable {
    case tcp, udp, sctp, icmp, icmpv6, esp, ah, gre
    /// Protocols with ports.
    public var hasPorts: Bool { self == .tcp || self == .udp || self == .sctp }
    /// The nftables name (`meta l4proto` takes `ipv6-icmp` for ICMPv6).
    var nftName: String { self == .icmpv6 ? "ipv6-icmp" : rawValue }
}

/// `proto: tcp` or `proto: [tcp, udp]`.
public struct ProtoList: Codable, Sendable, Equatable {
    public var protos: [Proto]
    public init(_ protos: [Proto]) { self.protos = protos }
    public init(from decoder: Decoder) throws {
        let texts = try decodeOneOrMany(decoder)
        protos = []
        for (i, t) in texts.enumerated() {
            guard let p = Proto(rawValue: t == "ipv6-icmp" ? "icmpv6" : t) else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath + (texts.count > 1 ? [AnyCodingKey(intValue: i)] : []),
                    debugDescription: "'\(t)' is not a protocol (expected one of \(Proto.allCases.map(\.rawValue).joined(separator: ", ")))"))
            }
            protos.append(p)
        }
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        if protos.count == 1 { try c.encode(protos[0].rawValue) } else { try c.encode(protos.map(\.rawValue)) }
    }
}

/// Ports: `22`, `8080-8090`, `[80, 443]` or a port set `@webports`.
public enum PortMatch: Codable, Sendable, Equatable {
    case ports([PortRange])
    case set(String)

    public init(from decoder: Decoder) throws {
        if let c = try? decoder.singleValueContainer(), let n = try? c.decode(Int.self) {
            guard let p = UInt16(exactly: n), p >= 1 else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "port \(n) is out of range 1-65535"))
            }
            self = .ports([try PortRange(p, p)])
            return
        }
        let texts = try decodeOneOrMany(decoder)
        if texts.count == 1, let name = setReference(texts[0]) {
            try checkName(name, what: "set", path: decoder.codingPath)
            self = .set(name)
            return
        }
        var ranges: [PortRange] = []
        for (i, t) in texts.enumerated() {
            do { ranges.append(try PortRange(t)) } catch {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath + (texts.count > 1 ? [AnyCodingKey(intValue: i)] : []),
                                                        debugDescription: error.message))
            }
        }
        self = .ports(ranges)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case let .ports(r): try c.encode(r.map(\.description))
        case let .set(name): try c.encode("@" + name)
        }
    }
}

/// Addresses: `10.0.0.0/8`, `[10.0.0.0/8, 2001:db8::/32]` or an address set `@admins`.
public enum AddressMatch: Codable, Sendable, Equatable {
    case prefixes([CIDR])
    case set(String)

    public init(from decoder: Decoder) throws {
        let texts = try decodeOneOrMany(decoder)
        if texts.count == 1, let name = setReference(texts[0]) {
            try checkName(name, what: "set", path: decoder.codingPath)
            self = .set(name)
            return
        }
        var out: [CIDR] = []
        for (i, t) in texts.enumerated() {
            do throws(ValueError) {
                let cidr = try CIDR(t)
                guard cidr.isNetwork else { throw ValueError("'\(t)' has host bits set; did you mean \(cidr.network)/\(cidr.prefixLength)?") }
                out.append(cidr)
            } catch {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath + (texts.count > 1 ? [AnyCodingKey(intValue: i)] : []),
                                                        debugDescription: error.message))
            }
        }
        self = .prefixes(out)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case let .prefixes(p): try c.encode(p.map(\.description))
        case let .set(name): try c.encode("@" + name)
        }
    }
}

/// `10/second`, `100/minute burst 20`: a token bucket (`limit rate`).
public struct RateLimit: Codable, Sendable, Equatable, CustomStringConvertible {
    public enum Unit: String, Sendable, CaseIterable { case second, minute, hour, day }
    public var rate: Int
    public var unit: Unit
    public var burst: Int?

    public init(_ text: String) throws(ValueError) {
        let bad = ValueError("'\(text)' is not a rate limit (expected e.g. 10/second or 100/minute burst 20)")
        let words = text.split(separator: " ")
        guard words.count == 1 || (words.count == 3 && words[1] == "burst") else { throw bad }
        let parts = words[0].split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let n = Int(parts[0]), n > 0, let u = Unit(rawValue: String(parts[1])) else { throw bad }
        rate = n; unit = u
        if words.count == 3 {
            guard let b = Int(words[2]), b > 0 else { throw bad }
            burst = b
        }
    }
    public var description: String { "\(rate)/\(unit.rawValue)" + (burst.map { " burst \($0)" } ?? "") }
    public init(from decoder: Decoder) throws { self = try decodeText(decoder) { t throws(ValueError) in try RateLimit(t) } }
    public func encode(to encoder: Encoder) throws { var c = encoder.singleValueContainer(); try c.encode(description) }
}

/// An ICMP or ICMPv6 message type by its nftables name, e.g. `echo-request`, `nd-neighbor-solicit`.
public struct ICMPType: Codable, Sendable, Equatable, CustomStringConvertible {
    public static let icmp: Set<String> = [
        "echo-reply", "destination-unreachable", "source-quench", "redirect", "echo-request", "router-advertisement",
        "router-solicitation", "time-exceeded", "parameter-problem", "timestamp-request", "timestamp-reply",
        "info-request", "info-reply", "address-mask-request", "address-mask-reply",
    ]
    public static let icmpv6: Set<String> = [
        "destination-unreachable", "packet-too-big", "time-exceeded", "parameter-problem", "echo-request", "echo-reply",
        "mld-listener-query", "mld-listener-report", "mld-listener-done", "mld-listener-reduction", "nd-router-solicit",
        "nd-router-advert", "nd-neighbor-solicit", "nd-neighbor-advert", "nd-redirect", "router-renumbering",
        "ind-neighbor-solicit", "ind-neighbor-advert", "mld2-listener-report",
    ]
    public var name: String
    public init(_ name: String) throws(ValueError) {
        guard ICMPType.icmp.contains(name) || ICMPType.icmpv6.contains(name) else {
            throw ValueError("'\(name)' is not an ICMP or ICMPv6 type (e.g. echo-request, destination-unreachable, nd-neighbor-solicit)")
        }
        self.name = name
    }
    public var description: String { name }
    public init(from decoder: Decoder) throws { self = try decodeText(decoder) { t throws(ValueError) in try ICMPType(t) } }
    public func encode(to encoder: Encoder) throws { var c = encoder.singleValueContainer(); try c.encode(name) }
}

/// `@name` → `name`.
func setReference(_ text: String) -> String? {
    text.hasPrefix("@") ? String(text.dropFirst()) : nil
}

/// A scalar or a list of scalars, as strings (numbers as their text).
func decodeOneOrMany(_ decoder: Decoder) throws -> [String] {
    if var list = try? decoder.unkeyedContainer() {
        var out: [String] = []
        while !list.isAtEnd { out.append(try scalarText(try list.superDecoder())) }
        return out
    }
    return [try scalarText(decoder)]
}

/// A scalar as text, whether it was written as a number or a string. Decoding a failed `Int` leaves
/// a single-value container where it was, unlike an unkeyed one, so the fallback is safe in every decoder.
func scalarText(_ decoder: Decoder) throws -> String {
    let c = try decoder.singleValueContainer()
    if let n = try? c.decode(Int.self) { return String(n) }
    return try c.decode(String.self)
}

import KilnConfig

/// The manifest's `router.dhcp:` section: one DHCP pool per interface (or VLAN subinterface), keyed by
/// interface name, e.g. `lan.10: { pool: 10.10.0.100-10.10.0.199, router: 10.10.0.1, dns: [10.10.0.1] }`.
public struct DHCPSection: Codable, Sendable, Equatable {
    public var segments: [DHCPSegment]
    public init(segments: [DHCPSegment]) { self.segments = segments }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: AnyCodingKey.self)
        var out: [DHCPSegment] = []
        for key in c.allKeys {
            let name: InterfaceName
            do { name = try InterfaceName(key.stringValue) } catch {
                throw DecodingError.dataCorrupted(.init(codingPath: c.codingPath + [key], debugDescription: error.message))
            }
            out.append(DHCPSegment(interface: name, spec: try c.decode(DHCPSpec.self, forKey: key)))
        }
        segments = out
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: AnyCodingKey.self)
        for s in segments { try c.encode(s.spec, forKey: AnyCodingKey(stringValue: s.interface.value)) }
    }
}

/// One interface's pool.
public struct DHCPSegment: Sendable, Equatable {
    public var interface: InterfaceName
    public var spec: DHCPSpec
    public init(interface: InterfaceName, spec: DHCPSpec) { self.interface = interface; self.spec = spec }
}

/// A route handed to clients in option 121 (RFC 3442): `{ to: 10.99.0.0/16, via: 10.10.0.1 }`.
public struct DHCPRouteSpec: Codable, Sendable, Equatable {
    public var to: CIDR
    public var via: IPv4Address
    public init(to: CIDR, via: IPv4Address) { self.to = to; self.via = via }

    enum CodingKeys: String, CodingKey, CaseIterable { case to, via }
    public init(from decoder: Decoder) throws {
        try rejectUnknownKeys(decoder, allowed: CodingKeys.allCases.map(\.rawValue), in: "a DHCP route")
        let c = try decoder.container(keyedBy: CodingKeys.self)
        to = try c.decode(CIDR.self, forKey: .to)
        guard to.address.isV4 else { throw c.fail(.to, "route destination \(to) is not IPv4; DHCPv4 routes carry IPv4 only") }
        guard to.isNetwork else { throw c.fail(.to, "route destination \(to) has host bits set; did you mean \(to.network)/\(to.prefixLength)?") }
        via = try c.decodeV4(forKey: .via)
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(to, forKey: .to); try c.encode(via.description, forKey: .via)
    }
}

/// A fixed address for one MAC: `{ mac: "52:54:00:aa:00:01", address: 10.10.0.50 }`.
public struct DHCPStaticLease: Codable, Sendable, Equatable {
    public var mac: MACAddress
    public var address: IPv4Address
    public init(mac: MACAddress, address: IPv4Address) { self.mac = mac; self.address = address }

    enum CodingKeys: String, CodingKey, CaseIterable { case mac, address }
    public init(from decoder: Decoder) throws {
        try rejectUnknownKeys(decoder, allowed: CodingKeys.allCases.map(\.rawValue), in: "a static lease")
        let c = try decoder.container(keyedBy: CodingKeys.self)
        mac = try c.decode(MACAddress.self, forKey: .mac)
        address = try c.decodeV4(forKey: .address)
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(mac, forKey: .mac); try c.encode(address.description, forKey: .address)
    }
}

/// One interface's DHCP pool and the options handed out with it, as written in the manifest.
/// Single values are checked while decoding; cross-field rules (pool inside the subnet, overlaps) in `validate`.
public struct DHCPSpec: Codable, Sendable, Equatable {
    public static let defaultLeaseSeconds = 3600
    public static let leaseRange = 60...0xffff_fffe   // 0xffffffff means "infinite" on the wire

    public var pool: IPv4Range
    public var router: IPv4Address?
    public var dns: [IPv4Address]
    public var domain: String?
    /// Lease time in seconds.
    public var lease: Int
    public var mtu: Int?
    public var routes: [DHCPRouteSpec]
    public var staticLeases: [DHCPStaticLease]

    public init(pool: IPv4Range, router: IPv4Address? = nil, dns: [IPv4Address] = [], domain: String? = nil,
                lease: Int = DHCPSpec.defaultLeaseSeconds, mtu: Int? = nil, routes: [DHCPRouteSpec] = [],
                staticLeases: [DHCPStaticLease] = []) {
        self.pool = pool; self.router = router; self.dns = dns; self.domain = domain; self.lease = lease
        self.mtu = mtu; self.routes = routes; self.staticLeases = staticLeases
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case pool, router, dns, domain, lease, mtu, routes
        case staticLeases = "static"
    }

    public init(from decoder: Decoder) throws {
        try rejectUnknownKeys(decoder, allowed: CodingKeys.allCases.map(\.rawValue), in: "a DHCP pool")
        let c = try decoder.container(keyedBy: CodingKeys.self)
        pool = try c.decode(IPv4Range.self, forKey: .pool)
        guard pool.count <= 65536 else { throw c.fail(.pool, "pool \(pool) holds \(pool.count) addresses; at most 65536 are supported") }
        router = try c.decodeV4IfPresent(forKey: .router)
        dns = try c.decodeV4List(forKey: .dns)
        guard dns.count <= 8 else { throw c.fail(.dns, "\(dns.count) DNS servers given; at most 8 fit a DHCP reply") }
        domain = try c.decodeIfPresent(String.self, forKey: .domain)
        if let d = domain, !isDomainName(d) {
            throw c.fail(.domain, "'\(d)' is not a domain name (labels of letters, digits and '-', 1-63 characters, 253 in all)")
        }
        lease = try c.decodeIfPresent(Int.self, forKey: .lease) ?? DHCPSpec.defaultLeaseSeconds
        guard DHCPSpec.leaseRange.contains(lease) else {
            throw c.fail(.lease, "lease \(lease) s is out of range \(DHCPSpec.leaseRange.lowerBound)-\(DHCPSpec.leaseRange.upperBound) seconds")
        }
        mtu = try c.decodeIfPresent(Int.self, forKey: .mtu)
        if let m = mtu, !(68...65535).contains(m) { throw c.fail(.mtu, "mtu \(m) is out of range 68-65535 (RFC 2132 §5.1)") }
        routes = try c.decodeIfPresent([DHCPRouteSpec].self, forKey: .routes) ?? []
        staticLeases = try c.decodeIfPresent([DHCPStaticLease].self, forKey: .staticLeases) ?? []
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(pool, forKey: .pool)
        try c.encodeIfPresent(router?.description, forKey: .router)
        if !dns.isEmpty { try c.encode(dns.map(\.description), forKey: .dns) }
        try c.encodeIfPresent(domain, forKey: .domain)
        try c.encode(lease, forKey: .lease)
        try c.encodeIfPresent(mtu, forKey: .mtu)
        if !routes.isEmpty { try c.encode(routes, forKey: .routes) }
        if !staticLeases.isEmpty { try c.encode(staticLeases, forKey: .staticLeases) }
    }
}

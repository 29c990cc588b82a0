import KilnConfig

/// A cross-field problem in the `router.dhcp` section, with the path of the offending value
/// (`router.dhcp.lan.10.static[0].address`) and what to change.
public struct DHCPSpecIssue: Equatable, Sendable, CustomStringConvertible {
    public var path: String
    public var message: String
    public init(path: String, message: String) { self.path = path; self.message = message }
    public var description: String { "\(path): \(message)" }
}

extension DHCPSection {
    /// Checks every pool against the IPv4 address of its interface. `addresses` maps an interface name to the
    /// addresses the manifest gives it; the first IPv4 one is the server's address and defines the subnet.
    public func validate(addresses: [InterfaceName: [CIDR]], basePath: [CodingKey] = [AnyCodingKey(stringValue: "router"), AnyCodingKey(stringValue: "dhcp")]) -> [DHCPSpecIssue] {
        var issues: [DHCPSpecIssue] = []
        var seenPools: [(InterfaceName, IPv4Range)] = []
        for segment in segments {
            let here = basePath + [AnyCodingKey(stringValue: segment.interface.value)]
            func issue(_ keys: [CodingKey], _ message: String) { issues.append(DHCPSpecIssue(path: describePath(here + keys), message: message)) }
            let spec = segment.spec
            let k = { (s: String) -> AnyCodingKey in AnyCodingKey(stringValue: s) }
            for (other, range) in seenPools where range.overlaps(spec.pool) {
                issue([k("pool")], "pool \(spec.pool) overlaps the pool \(range) of \(other)")
            }
            seenPools.append((segment.interface, spec.pool))
            guard let subnet = addresses[segment.interface]?.lazy.compactMap(IPv4Subnet.init).first else {
                issue([], "interface \(segment.interface) has no IPv4 address; a DHCP pool needs one to serve from (add it under interfaces)")
                continue
            }
            let net = "\(subnet.network)/\(subnet.prefixLength)"
            if !subnet.isHostAddress(spec.pool.lower) || !subnet.isHostAddress(spec.pool.upper) {
                issue([k("pool")], "pool \(spec.pool) is not inside the host addresses of \(segment.interface)'s subnet \(net)")
            }
            if spec.pool.contains(subnet.address) {
                issue([k("pool")], "pool \(spec.pool) contains the interface's own address \(subnet.address)")
            }
            if let r = spec.router, !subnet.isHostAddress(r) { issue([k("router")], "router \(r) is outside the subnet \(net)") }
            for (i, route) in spec.routes.enumerated() where !subnet.isHostAddress(route.via) {
                issue([k("routes"), AnyCodingKey(intValue: i), k("via")], "gateway \(route.via) is not on the subnet \(net); clients cannot reach it")
            }
            var macs: [MACAddress: Int] = [:], addrs: [IPv4Address: Int] = [:]
            for (i, s) in spec.staticLeases.enumerated() {
                let at: [CodingKey] = [k("static"), AnyCodingKey(intValue: i)]
                if let j = macs[s.mac] { issue(at + [k("mac")], "MAC \(s.mac) already has a static lease at static[\(j)]") }
                if let j = addrs[s.address] { issue(at + [k("address")], "address \(s.address) is already given to static[\(j)]") }
                macs[s.mac] = macs[s.mac] ?? i; addrs[s.address] = addrs[s.address] ?? i
                if !subnet.isHostAddress(s.address) {
                    issue(at + [k("address")], "static address \(s.address) is outside the host addresses of subnet \(net)")
                } else if s.address == subnet.address {
                    issue(at + [k("address")], "static address \(s.address) is the interface's own address")
                }
            }
            let size = spec.replyOptionBytes
            if size > DHCPSpec.optionBudget {
                issue([], "the options of this pool take \(size) bytes, more than the \(DHCPSpec.optionBudget) a 576-byte DHCP reply allows; use fewer routes or DNS servers")
            }
        }
        return issues
    }
}

extension DHCPSpec {
    /// Option bytes in a 576-byte message (RFC 2131 §2: clients must accept 576; 548 after IP/UDP, minus 240 header).
    public static let optionBudget = 308

    /// Worst-case size of the options in an ACK for this pool (every optional option requested).
    var replyOptionBytes: Int {
        var n = 3 + 6 + 6 + 6 + 6 + 6 + 6 + 1          // type, server id, lease, T1, T2, mask, broadcast, end
        if router != nil { n += 6 }
        if !dns.isEmpty { n += 2 + 4 * dns.count }
        if let d = domain { n += 2 + d.utf8.count }
        if mtu != nil { n += 4 }
        if !routes.isEmpty {
            let body = routes.reduce(0) { $0 + 1 + ($1.to.prefixLength + 7) / 8 + 4 } + (router != nil ? 5 : 0)
            n += body + 2 * ((body + 254) / 255)
        }
        return n
    }
}

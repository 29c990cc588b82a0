import KilnConfig

/// The manifest's `switch:` section: ports, VLANs, MAC table bounds, mirrors and flow export.
///
/// ```yaml
/// switch:
///   vlans: [10, 20]
///   ports:
///     - { name: eth1, vlan: 10 }                          # access port (the default mode)
///     - { name: eth2, mode: trunk, vlans: [10, 20], native: 1 }
///     - { name: sw0, type: tap, vlan: 10, addresses: [10.10.0.1/24] }   # internal port: the box's own stack
///   mac: { limit: 8192, perPort: 1024, aging: 300 }
///   mirror: [ { sources: [eth1], destination: eth3 } ]
///   export: { collector: "192.0.2.10:4739", interval: 10 }
/// ```
public struct SwitchSpec: Codable, Equatable, Sendable {
    /// One switch port.
    public struct Port: Codable, Equatable, Sendable {
        /// `interface` (an existing NIC, the default) or `tap` (an internal port the switch creates).
        public enum Kind: String, Codable, Sendable { case interface, tap }
        /// `access` (the default) or `trunk`.
        public enum Mode: String, Codable, Sendable { case access, trunk }
        public var name: String
        public var type: Kind?
        public var mode: Mode?
        /// The PVID of an access port.
        public var vlan: UInt16?
        /// The tagged VLANs of a trunk port.
        public var vlans: [UInt16]?
        /// The untagged VLAN of a trunk port, if any.
        public var native: UInt16?
        /// Addresses of the box's own stack on a `tap` port (the runtime assigns them; the switch ignores them).
        public var addresses: [CIDR]?
        public init(name: String, type: Kind? = nil, mode: Mode? = nil, vlan: UInt16? = nil, vlans: [UInt16]? = nil,
                    native: UInt16? = nil, addresses: [CIDR]? = nil) {
            self.name = name; self.type = type; self.mode = mode; self.vlan = vlan; self.vlans = vlans; self.native = native
            self.addresses = addresses
        }
    }

    /// Bounds of the MAC table.
    public struct MAC: Codable, Equatable, Sendable {
        public var limit: Int?
        public var perPort: Int?
        /// Seconds an address stays learned without traffic.
        public var aging: Int?
        public init(limit: Int? = nil, perPort: Int? = nil, aging: Int? = nil) {
            self.limit = limit; self.perPort = perPort; self.aging = aging
        }
    }

    /// A SPAN session: copies of everything the sources send and receive go to the destination port.
    public struct Mirror: Codable, Equatable, Sendable {
        public var sources: [String]
        public var destination: String
        public init(sources: [String], destination: String) { self.sources = sources; self.destination = destination }
    }

    /// IPFIX export to a collector over UDP.
    public struct Export: Codable, Equatable, Sendable {
        /// `address:port` (IPv4) or `[address]:port` (IPv6).
        public var collector: String
        /// Seconds between exports (each export carries the deltas since the previous one).
        public var interval: Int?
        public var domain: UInt32?
        /// Flows held between exports.
        public var maxFlows: Int?
        public init(collector: String, interval: Int? = nil, domain: UInt32? = nil, maxFlows: Int? = nil) {
            self.collector = collector; self.interval = interval; self.domain = domain; self.maxFlows = maxFlows
        }
    }

    public var ports: [Port]
    public var vlans: [UInt16]?
    public var mac: MAC?
    public var mirror: [Mirror]?
    public var export: Export?

    public init(ports: [Port], vlans: [UInt16]? = nil, mac: MAC? = nil, mirror: [Mirror]? = nil, export: Export? = nil) {
        self.ports = ports; self.vlans = vlans; self.mac = mac; self.mirror = mirror; self.export = export
    }

    /// Checks the section and turns it into port modes and mirror pairs; errors name the field
    /// (`switch.ports[1].vlan: ...`).
    public func compile() throws(ValueError) -> (modes: [PortMode], mirrors: [(sources: [Int], destination: Int)]) {
        guard !ports.isEmpty else { throw ValueError("switch.ports: a switch needs at least one port") }
        guard ports.count <= SwitchCore.maxPorts else {
            throw ValueError("switch.ports: at most \(SwitchCore.maxPorts) ports (found \(ports.count))")
        }
        let declared = vlans.map(Set.init)
        func checkVLAN(_ v: UInt16, _ path: String) throws(ValueError) {
            guard (1...4094).contains(v) else { throw ValueError("\(path): VLAN \(v) is outside 1-4094") }
            if let declared, !declared.contains(v), v != 1 {
                throw ValueError("\(path): VLAN \(v) is not in switch.vlans \(declared.sorted())")
            }
        }
        var index: [String: Int] = [:]
        var modes: [PortMode] = []
        for (i, port) in ports.enumerated() {
            let path = "switch.ports[\(i)]"
            do { _ = try InterfaceName(port.name) } catch { throw ValueError("\(path).name: \(error.message)") }
            guard index[port.name] == nil else { throw ValueError("\(path).name: port '\(port.name)' is listed twice") }
            index[port.name] = i
            if port.addresses != nil, port.type != .tap {
                throw ValueError("\(path).addresses: only a tap port has addresses (give a NIC's addresses under interfaces)")
            }
            switch port.mode ?? .access {
            case .access:
                guard port.vlans == nil, port.native == nil else {
                    throw ValueError("\(path): 'vlans' and 'native' belong to trunk ports; add mode: trunk")
                }
                let v = port.vlan ?? 1
                try checkVLAN(v, "\(path).vlan")
                modes.append(.access(vlan: v))
            case .trunk:
                guard port.vlan == nil else { throw ValueError("\(path).vlan: a trunk port takes 'vlans' and 'native'") }
                guard let list = port.vlans, !list.isEmpty else { throw ValueError("\(path).vlans: a trunk port needs its VLANs") }
                for (j, v) in list.enumerated() { try checkVLAN(v, "\(path).vlans[\(j)]") }
                if let n = port.native { try checkVLAN(n, "\(path).native") }
                modes.append(.trunk(allowed: list, native: port.native))
            }
        }
        var mirrors: [(sources: [Int], destination: Int)] = []
        for (i, m) in (mirror ?? []).enumerated() {
            guard let d = index[m.destination] else {
                throw ValueError("switch.mirror[\(i)].destination: no port named '\(m.destination)'")
            }
            var sources: [Int] = []
            for (j, s) in m.sources.enumerated() {
                guard let p = index[s] else { throw ValueError("switch.mirror[\(i)].sources[\(j)]: no port named '\(s)'") }
                guard p != d else { throw ValueError("switch.mirror[\(i)].sources[\(j)]: '\(s)' is the destination") }
                sources.append(p)
            }
            mirrors.append((sources, d))
        }
        if let a = mac?.aging, a < 1 { throw ValueError("switch.mac.aging: \(a) must be at least 1 second") }
        if let l = mac?.limit, l < 1 { throw ValueError("switch.mac.limit: \(l) must be at least 1") }
        if let l = mac?.perPort, l < 1 { throw ValueError("switch.mac.perPort: \(l) must be at least 1") }
        if let e = export {
            if let i = e.interval, i < 1 { throw ValueError("switch.export.interval: \(i) must be at least 1 second") }
            guard Collector(e.collector) != nil else {
                throw ValueError("switch.export.collector: '\(e.collector)' is not address:port (e.g. 192.0.2.10:4739)")
            }
        }
        return (modes, mirrors)
    }
}

/// A collector address parsed from `a.b.c.d:port` or `[v6]:port`.
public struct Collector: Equatable, Sendable {
    public var address: IPAddress
    public var port: UInt16
    public init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]), port > 0 else {
            return nil
        }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard let address = try? IPAddress(host) else { return nil }
        self.address = address
        self.port = port
    }
}

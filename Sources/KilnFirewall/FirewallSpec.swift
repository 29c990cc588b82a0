import KilnConfig

/// The manifest's `firewall:` section: zones of interfaces, default verdicts per zone pair, rules, named
/// sets, port forwards and source NAT. Values are validated while decoding (a bad port range or set
/// element is a `DecodingError.dataCorrupted` at its coding path); checks across fields are in `validate()`.
///
/// ```yaml
/// firewall:
///   zones: { lan: { interfaces: [lan.10, lan.20] }, wan: { interfaces: [wan] } }
///   sets: { blocklist: { type: ipv4, elements: [203.0.113.0/24], file: blocklist.txt } }
///   policies: [ { from: lan, to: wan, action: accept } ]
///   rules: [ { from: wan, to: self, proto: tcp, dport: 22, source: "@admins", action: accept } ]
///   forwards: [ { from: wan, proto: tcp, port: 80, to: 10.30.0.10, to-port: 8080 } ]
///   masquerade: [wan]
///   snat: [ { out: wan, to: 198.51.100.2 } ]
///   defaults: { anti-spoofing: true, log-drops: false }
/// ```
public struct FirewallSpec: Codable, Sendable, Equatable {
    /// Zones in manifest order. `self` (the box itself) is implicit and may not be declared.
    public var zones: [Zone]
    /// Named sets in manifest order, referenced from rules as `@name`.
    public var sets: [NamedSet]
    /// Default verdict per zone pair; a pair that is not listed drops (traffic from `self` follows `defaults.output`).
    public var policies: [Policy]
    /// Rules in order; the first match decides, before the pair's policy.
    public var rules: [Rule]
    /// Destination NAT port forwards. Forwarded flows are allowed through the forward chain.
    public var forwards: [PortForward]
    /// Zones whose outgoing IPv4 traffic is masqueraded.
    public var masquerade: [String]
    /// Static source NAT.
    public var snat: [SourceNAT]
    public var defaults: Defaults

    public init(zones: [Zone] = [], sets: [NamedSet] = [], policies: [Policy] = [], rules: [Rule] = [],
                forwards: [PortForward] = [], masquerade: [String] = [], snat: [SourceNAT] = [], defaults: Defaults = Defaults()) {
        self.zones = zones; self.sets = sets; self.policies = policies; self.rules = rules
        self.forwards = forwards; self.masquerade = masquerade; self.snat = snat; self.defaults = defaults
    }

    enum CodingKeys: String, CodingKey { case zones, sets, policies, rules, forwards, masquerade, snat, defaults }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        zones = []
        if c.contains(.zones) {
            let z = try c.nestedContainer(keyedBy: AnyCodingKey.self, forKey: .zones)
            for key in z.allKeys {
                try checkName(key.stringValue, what: "zone", path: z.codingPath + [key])
                if key.stringValue == "self" {
                    throw DecodingError.dataCorrupted(.init(codingPath: z.codingPath + [key],
                        debugDescription: "'self' is the firewall itself and is always defined; name the zone differently"))
                }
                let body = try z.decode(ZoneBody.self, forKey: key)
                zones.append(Zone(name: key.stringValue, interfaces: body.interfaces))
            }
        }
        sets = []
        if c.contains(.sets) {
            let s = try c.nestedContainer(keyedBy: AnyCodingKey.self, forKey: .sets)
            for key in s.allKeys {
                try checkName(key.stringValue, what: "set", path: s.codingPath + [key])
                var set = try s.decode(NamedSet.self, forKey: key)
                set.name = key.stringValue
                sets.append(set)
            }
        }
        policies = try c.decodeIfPresent([Policy].self, forKey: .policies) ?? []
        rules = try c.decodeIfPresent([Rule].self, forKey: .rules) ?? []
        forwards = try c.decodeIfPresent([PortForward].self, forKey: .forwards) ?? []
        masquerade = try c.decodeIfPresent([String].self, forKey: .masquerade) ?? []
        snat = try c.decodeIfPresent([SourceNAT].self, forKey: .snat) ?? []
        defaults = try c.decodeIfPresent(Defaults.self, forKey: .defaults) ?? Defaults()
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        var z = c.nestedContainer(keyedBy: AnyCodingKey.self, forKey: .zones)
        for zone in zones { try z.encode(ZoneBody(interfaces: zone.interfaces), forKey: AnyCodingKey(stringValue: zone.name)) }
        var s = c.nestedContainer(keyedBy: AnyCodingKey.self, forKey: .sets)
        for set in sets { try s.encode(set, forKey: AnyCodingKey(stringValue: set.name)) }
        try c.encode(policies, forKey: .policies)
        try c.encode(rules, forKey: .rules)
        try c.encode(forwards, forKey: .forwards)
        try c.encode(masquerade, forKey: .masquerade)
        try c.encode(snat, forKey: .snat)
        try c.encode(defaults, forKey: .defaults)
    }

    /// The zone named `name`, if declared.
    public func zone(_ name: String) -> Zone? { zones.first { $0.name == name } }
    /// The set named `name`, if declared.
    public func set(_ name: String) -> NamedSet? { sets.first { $0.name == name } }
}

/// A named group of interfaces (VLAN subinterfaces such as `lan.10` included). Traffic is classified by the
/// interface it arrives on and leaves by; an interface in no zone passes nothing.
public struct Zone: Sendable, Equatable {
    public var name: String
    public var interfaces: [InterfaceName]
    public init(name: String, interfaces: [InterfaceName]) { self.name = name; self.interfaces = interfaces }
}

/// `{ interfaces: [...] }`, or the short form `[...]`.
struct ZoneBody: Codable {
    var interfaces: [InterfaceName]
    init(interfaces: [InterfaceName]) { self.interfaces = interfaces }
    enum CodingKeys: String, CodingKey { case interfaces }
    init(from decoder: Decoder) throws {
        if (try? decoder.unkeyedContainer()) != nil {
            interfaces = try [InterfaceName](from: decoder)
        } else {
            interfaces = try decoder.container(keyedBy: CodingKeys.self).decode([InterfaceName].self, forKey: .interfaces)
        }
    }
}

/// What happens to a packet: `accept`, `drop` (silently) or `reject` (TCP RST, or ICMP unreachable).
public enum Action: String, Codable, Sendable, Equatable, CaseIterable {
    case accept, drop, reject
    public init(from decoder: Decoder) throws {
        self = try decodeText(decoder) { t throws(ValueError) in
            guard let a = Action(rawValue: t) else { throw ValueError("'\(t)' is not an action (expected accept, drop or reject)") }
            return a
        }
    }
}

/// The default verdict for traffic from one zone to another (`self` is the box itself).
public struct Policy: Codable, Sendable, Equatable {
    public var from: String
    public var to: String
    public var action: Action
    public var log: Bool?
    public init(from: String, to: String, action: Action, log: Bool? = nil) {
        self.from = from; self.to = to; self.action = action; self.log = log
    }
}

/// Firewall-wide switches, with the defaults users expect.
public struct Defaults: Codable, Sendable, Equatable {
    /// Reverse-path check (`fib saddr . iif oif missing drop`) before connection tracking.
    public var antiSpoofing: Bool
    /// Log (rate limited) every packet dropped by a default or a drop policy.
    public var logDrops: Bool
    /// Verdict for traffic the box itself sends to a zone with no `from: self` policy.
    public var output: Action

    public init(antiSpoofing: Bool = true, logDrops: Bool = false, output: Action = .accept) {
        self.antiSpoofing = antiSpoofing; self.logDrops = logDrops; self.output = output
    }
    enum CodingKeys: String, CodingKey { case antiSpoofing = "anti-spoofing", logDrops = "log-drops", output }
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        antiSpoofing = try c.decodeIfPresent(Bool.self, forKey: .antiSpoofing) ?? true
        logDrops = try c.decodeIfPresent(Bool.self, forKey: .logDrops) ?? false
        output = try c.decodeIfPresent(Action.self, forKey: .output) ?? .accept
    }
}

/// Zone, set and other names: a letter, then letters, digits or `_`, at most 24 characters.
/// They become parts of nftables chain and set names, so nothing else is allowed.
func checkName(_ name: String, what: String, path: [CodingKey]) throws {
    if let problem = nameProblem(name) {
        throw DecodingError.dataCorrupted(.init(codingPath: path, debugDescription: "\(what) name '\(name)' \(problem)"))
    }
}

func nameProblem(_ name: String) -> String? {
    guard let first = name.unicodeScalars.first, first.isASCIILetter else { return "must start with a letter" }
    guard name.unicodeScalars.count <= 24 else { return "is longer than 24 characters" }
    guard name.unicodeScalars.allSatisfy({ $0.isASCIILetter || ("0"..."9").contains($0) || $0 == "_" }) else {
        return "may hold only letters, digits and '_'"
    }
    return nil
}

extension Unicode.Scalar {
    var isASCIILetter: Bool { ("a"..."z").contains(self) || ("A"..."Z").contains(self) }
}

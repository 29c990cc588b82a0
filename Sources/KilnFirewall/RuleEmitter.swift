import KilnConfig

/// Which zone pairs get a chain, and what goes in it. A pair has a chain when a policy or a rule names it.
struct ZonePlan {
    struct Pair {
        var from: String
        var to: String
        /// `lan-wan`, `wan-self`: zone names hold no `-`, base chains hold none, so names never collide.
        var chain: String { from + "-" + to }
        var rules: [Int] = []
        var policy: Int?
    }

    let pairs: [Pair]
    private let zones: [String: [InterfaceName]]

    init(_ spec: FirewallSpec) {
        var zones: [String: [InterfaceName]] = [:]
        for z in spec.zones { zones[z.name] = z.interfaces }
        self.zones = zones
        let names = spec.zones.map(\.name) + ["self"]
        var pairs: [Pair] = []
        for from in names {
            for to in names where !(from == "self" && to == "self") {
                var pair = Pair(from: from, to: to)
                pair.policy = spec.policies.firstIndex { $0.from == from && $0.to == to }
                pair.rules = spec.rules.indices.filter { spec.rules[$0].early != true && spec.rules[$0].from == from && spec.rules[$0].to == to }
                if pair.policy != nil || !pair.rules.isEmpty { pairs.append(pair) }
            }
        }
        self.pairs = pairs
    }

    func pair(_ from: String, _ to: String) -> Pair? { pairs.first { $0.from == from && $0.to == to } }
    func interfaces(_ zone: String) -> [InterfaceName] { zones[zone] ?? [] }
}

extension FirewallCompiler {
    /// nft text for one rule: one line, or one per IP version when its literal addresses mix versions.
    static func ruleLines(_ index: Int, _ spec: FirewallSpec, _ plan: ZonePlan, chain: String) -> [String] {
        let r = spec.rules[index]
        var head: [String] = []
        if r.early == true {
            let names = plan.interfaces(r.from).map { nftQuoted($0.value) }
            guard !names.isEmpty else { return [] }
            head.append("iifname " + anonymousSet(names))
        }
        let protos = r.proto?.protos ?? []
        var l4: [String] = []
        let portsFor = { (key: String, m: PortMatch?) -> String? in
            guard let m else { return nil }
            let value: String
            switch m {
            case let .ports(ranges): value = anonymousSet(ranges.map(\.description))
            case let .set(name): value = "@" + name
            }
            return protos.count == 1 ? "\(protos[0].rawValue) \(key) \(value)" : "th \(key) \(value)"
        }
        let sport = portsFor("sport", r.sport), dport = portsFor("dport", r.dport)
        if let types = r.icmpType, protos.count == 1 {
            l4.append("\(protos[0] == .icmp ? "icmp" : "icmpv6") type \(anonymousSet(types.map(\.name)))")
        } else if protos.count > 1 || (protos.count == 1 && sport == nil && dport == nil) {
            l4.append("meta l4proto " + anonymousSet(protos.map(\.nftName)))
        }
        l4 += [sport, dport].compactMap { $0 }
        if let raw = r.raw, !raw.isEmpty { l4.append(raw) }

        var tail: [String] = []
        if let limit = r.limit {
            tail.append("limit rate \(limit.rate)/\(limit.unit.rawValue)" + (limit.burst.map { " burst \($0) packets" } ?? ""))
        }
        tail.append("counter")
        if r.log == true {
            tail.append("log prefix " + nftQuoted("kiln \(chain) rules[\(index)]: "))
        }
        switch r.action {
        case .accept: tail.append("accept")
        case .drop: tail.append("drop")
        case .reject: tail.append(protos == [.tcp] ? "reject with tcp reset" : "reject")
        }
        if let comment = r.comment { tail.append("comment " + nftQuoted(comment, limit: 120)) }

        let families = spec.families(of: r)
        let split = [r.source, r.destination].contains { match in
            if case let .prefixes(p)? = match { return Set(p.map(\.address.isV4)).count > 1 }
            return false
        }
        let targets: [IPFamily?] = split ? families.map { $0 } : (families.isEmpty ? [] : [nil])
        return targets.map { (head + addressParts(r, spec, $0) + l4 + tail).joined(separator: " ") }
    }

    /// `ip saddr … ip daddr …` for one IP version, or for whatever version the matches have when `family` is nil.
    static func addressParts(_ r: Rule, _ spec: FirewallSpec, _ family: IPFamily?) -> [String] {
        var parts: [String] = []
        for (key, match) in [("saddr", r.source), ("daddr", r.destination)] {
            guard let match else { continue }
            switch match {
            case let .prefixes(prefixes):
                let chosen = prefixes.filter { family == nil || $0.address.isV4 == (family == .ipv4) }
                guard let first = chosen.first else { continue }
                let f = first.address.isV4 ? IPFamily.ipv4 : .ipv6
                parts.append("\(f.nft) \(key) " + anonymousSet(chosen.map { SetElement.prefix($0).description }))
            case let .set(name):
                let f: IPFamily = spec.set(name)?.kind == .ipv6 ? .ipv6 : .ipv4
                parts.append("\(f.nft) \(key) @\(name)")
            }
        }
        return parts
    }

    /// `x` alone, or `{ x, y }`.
    static func anonymousSet(_ items: [String]) -> String {
        items.count == 1 ? items[0] : "{ " + items.joined(separator: ", ") + " }"
    }

    static func emitNAT(_ spec: FirewallSpec, _ plan: ZonePlan, _ w: inout RulesetWriter) {
        func ifnames(_ zone: String) -> String? {
            let names = plan.interfaces(zone).map { nftQuoted($0.value) }
            return names.isEmpty ? nil : anonymousSet(names)
        }
        if !spec.forwards.isEmpty {
            w.block("chain nat_prerouting") { w in
                w.line("type nat hook prerouting priority dstnat; policy accept;")
                for (i, f) in spec.forwards.enumerated() {
                    guard let iif = ifnames(f.from) else { continue }
                    let family = f.to.isV4 ? "ip" : "ip6"
                    var parts = ["iifname \(iif)"]
                    if let d = f.destination { parts.append("\(family) daddr \(d)") }
                    parts.append("\(f.proto.rawValue) dport \(f.port)")
                    let target = f.toPort.map { f.to.isV4 ? "\(f.to):\($0)" : "[\(f.to)]:\($0)" } ?? f.to.description
                    parts.append("dnat \(family) to " + target)
                    w.line(parts.joined(separator: " "), "forwards[\(i)]")
                }
            }
        }
        if !spec.snat.isEmpty || !spec.masquerade.isEmpty {
            w.block("chain nat_postrouting") { w in
                w.line("type nat hook postrouting priority srcnat; policy accept;")
                for (i, s) in spec.snat.enumerated() {
                    guard let oif = ifnames(s.out) else { continue }
                    let family = s.to.isV4 ? "ip" : "ip6"
                    var parts = ["oifname \(oif)"]
                    if let src = s.source, !src.isEmpty { parts.append("\(family) saddr " + anonymousSet(src.map(\.description))) }
                    parts.append("snat \(family) to \(s.to)")
                    w.line(parts.joined(separator: " "), "snat[\(i)]")
                }
                for (i, zone) in spec.masquerade.enumerated() {
                    guard let oif = ifnames(zone) else { continue }
                    w.line("meta nfproto ipv4 oifname \(oif) masquerade", "masquerade[\(i)]")
                }
            }
        }
    }
}

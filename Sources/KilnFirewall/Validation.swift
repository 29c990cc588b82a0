import KilnConfig

/// A problem found across fields of the `firewall:` section: the setting's coding path, e.g.
/// `firewall.forwards[1]`, and what is wrong. The manifest loader turns the path into file:line:col.
public struct FirewallIssue: Error, Sendable, Equatable, CustomStringConvertible {
    public var path: String
    public var message: String
    public init(path: String, message: String) { self.path = path; self.message = message }
    public var description: String { "\(path): \(message)" }
}

extension FirewallSpec {
    /// Every cross-field problem, in manifest order. `interfaces`, when given, are the names the appliance
    /// defines (NICs, VLANs, bridges, tunnels); zones may then name only those. `root` prefixes every path.
    public func validate(interfaces: [InterfaceName]? = nil, root: String = "firewall") -> [FirewallIssue] {
        var issues: [FirewallIssue] = []
        func issue(_ path: String, _ message: String) { issues.append(FirewallIssue(path: root + "." + path, message: message)) }
        let zoneNames = zones.map(\.name)

        func checkZone(_ name: String, _ path: String, allowSelf: Bool) {
            if name == "self" {
                if !allowSelf { issue(path, "'self' cannot be used here; name a zone") }
                return
            }
            guard !zoneNames.contains(name) else { return }
            let hint = suggestion(for: name, among: zoneNames + (allowSelf ? ["self"] : [])).map { "; did you mean '\($0)'?" }
                ?? " (zones: \((zoneNames + (allowSelf ? ["self"] : [])).joined(separator: ", ")))"
            issue(path, "unknown zone '\(name)'" + hint)
        }

        var owner: [InterfaceName: String] = [:]
        for zone in zones {
            if zone.interfaces.isEmpty { issue("zones.\(zone.name).interfaces", "zone '\(zone.name)' has no interfaces") }
            for (i, ifname) in zone.interfaces.enumerated() {
                let path = "zones.\(zone.name).interfaces[\(i)]"
                if let other = owner[ifname] {
                    issue(path, "interface '\(ifname)' is already in zone '\(other)'")
                } else { owner[ifname] = zone.name }
                if let known = interfaces, !known.contains(ifname) {
                    issue(path, "zone '\(zone.name)' names interface '\(ifname)', which the appliance does not define")
                }
            }
        }

        var pairs: [String: Int] = [:]
        for (i, p) in policies.enumerated() {
            checkZone(p.from, "policies[\(i)].from", allowSelf: true)
            checkZone(p.to, "policies[\(i)].to", allowSelf: true)
            if p.from == "self", p.to == "self" { issue("policies[\(i)]", "traffic from self to self (loopback) is always accepted") }
            if let first = pairs[p.from + " " + p.to] {
                issue("policies[\(i)]", "a policy from '\(p.from)' to '\(p.to)' is already given by \(root).policies[\(first)]")
            } else { pairs[p.from + " " + p.to] = i }
        }

        for (i, r) in rules.enumerated() { checkRule(r, "rules[\(i)]", issue: issue, checkZone: checkZone) }

        for (i, f) in forwards.enumerated() {
            checkZone(f.from, "forwards[\(i)].from", allowSelf: false)
            if !f.proto.hasPorts { issue("forwards[\(i)].proto", "a port forward needs proto tcp, udp or sctp") }
            if let d = f.destination, d.isV4 != f.to.isV4 {
                issue("forwards[\(i)].destination", "destination \(d) and target \(f.to) are of different IP versions")
            }
            for j in 0..<i {
                let g = forwards[j]
                guard g.from == f.from, g.proto == f.proto, g.port.overlaps(f.port), g.to.isV4 == f.to.isV4,
                      g.destination == nil || f.destination == nil || g.destination == f.destination else { continue }
                issue("forwards[\(i)]", "\(f.proto.rawValue) port \(f.port) from zone '\(f.from)' overlaps \(root).forwards[\(j)] (\(g.proto.rawValue) port \(g.port))")
                break
            }
        }
        for (i, m) in masquerade.enumerated() { checkZone(m, "masquerade[\(i)]", allowSelf: false) }
        for (i, s) in snat.enumerated() {
            checkZone(s.out, "snat[\(i)].out", allowSelf: false)
            for (k, c) in (s.source ?? []).enumerated() where c.address.isV4 != s.to.isV4 {
                issue("snat[\(i)].source[\(k)]", "source \(c) and address \(s.to) are of different IP versions")
            }
        }
        return issues
    }

    private func checkRule(_ r: Rule, _ at: String, issue: (String, String) -> Void, checkZone: (String, String, Bool) -> Void) {
        checkZone(r.from, at + ".from", r.early != true)
        if r.early == true {
            if r.from == "self" { issue(at + ".from", "an early rule filters arriving traffic; 'from' must be a zone") }
            if r.to != nil { issue(at + ".to", "an early rule runs before routing, so it has no 'to'; remove it or drop 'early'") }
            if r.action != .drop { issue(at + ".action", "an early rule can only drop (\(r.action.rawValue) given)") }
        } else if let to = r.to {
            checkZone(to, at + ".to", true)
            if r.from == "self", to == "self" { issue(at, "traffic from self to self (loopback) is always accepted") }
        } else {
            issue(at, "missing 'to' (a zone or self)")
        }
        let protos = r.proto?.protos ?? []
        if r.sport != nil || r.dport != nil, protos.isEmpty || !protos.allSatisfy(\.hasPorts) {
            issue(at + (r.dport != nil ? ".dport" : ".sport"), "ports need proto tcp, udp or sctp")
        }
        if let types = r.icmpType {
            if protos == [.icmp] {
                for (k, t) in types.enumerated() where !ICMPType.icmp.contains(t.name) {
                    issue(at + ".icmp-type[\(k)]", "'\(t.name)' is an ICMPv6 type; use proto icmpv6")
                }
            } else if protos == [.icmpv6] {
                for (k, t) in types.enumerated() where !ICMPType.icmpv6.contains(t.name) {
                    issue(at + ".icmp-type[\(k)]", "'\(t.name)' is not an ICMPv6 type")
                }
            } else {
                issue(at + ".icmp-type", "icmp-type needs proto icmp or proto icmpv6")
            }
        }
        for (key, match) in [("sport", r.sport), ("dport", r.dport)] {
            guard case let .set(name)? = match else { continue }
            guard let s = set(name) else { issue(at + "." + key, unknownSet(name)); continue }
            if s.kind != .port { issue(at + "." + key, "set '\(name)' holds \(s.kind.rawValue) prefixes, not ports") }
        }
        for (key, match) in [("source", r.source), ("destination", r.destination)] {
            guard case let .set(name)? = match else { continue }
            guard let s = set(name) else { issue(at + "." + key, unknownSet(name)); continue }
            if s.kind == .port { issue(at + "." + key, "set '\(name)' holds ports, not addresses") }
        }
        if families(of: r).isEmpty {
            issue(at, "matches IPv4 and IPv6 at once (source, destination and proto disagree), so it can never match")
        }
    }

    private func unknownSet(_ name: String) -> String {
        "unknown set '\(name)'" + (suggestion(for: name, among: sets.map(\.name)).map { "; did you mean '\($0)'?" } ?? "")
    }

    /// The IP versions a rule can match, from its addresses and protocol; empty means it never matches.
    func families(of r: Rule) -> [IPFamily] {
        var allowed = Set(IPFamily.allCases)
        func narrow(_ m: AddressMatch?) {
            switch m {
            case nil: return
            case let .prefixes(p)?: allowed.formIntersection(Set(p.map { $0.address.isV4 ? IPFamily.ipv4 : .ipv6 }))
            case let .set(name)?:
                switch set(name)?.kind {
                case .ipv4?: allowed.formIntersection([.ipv4])
                case .ipv6?: allowed.formIntersection([.ipv6])
                default: return
                }
            }
        }
        narrow(r.source); narrow(r.destination)
        if let protos = r.proto?.protos {
            if protos.allSatisfy({ $0 == .icmp }) { allowed.formIntersection([.ipv4]) }
            if protos.allSatisfy({ $0 == .icmpv6 }) { allowed.formIntersection([.ipv6]) }
        }
        return IPFamily.allCases.filter(allowed.contains)
    }
}

/// IPv4 or IPv6, for splitting a rule into per-family nftables lines.
enum IPFamily: CaseIterable, Hashable {
    case ipv4, ipv6
    var nft: String { self == .ipv4 ? "ip" : "ip6" }
}

/// The closest name within a small edit distance, for "did you mean".
func suggestion(for word: String, among candidates: [String]) -> String? {
    NameSuggestion.closest(to: word, among: candidates) { _ in max(1, min(3, word.count / 3 + 1)) }
}

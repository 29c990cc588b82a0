import KilnConfig

/// Compiles a `FirewallSpec` into one nftables ruleset for the `inet kiln` table. Pure: same spec, same text.
///
/// Shape: zone dispatch through verdict maps (`iifname . oifname vmap @forward-zones` jumps to a chain per
/// zone pair), named interval sets for addresses and ports, base chains input/forward/output with policy
/// drop, NAT chains, and the defaults users expect (established/related accepted, invalid dropped and
/// counted, essential ICMPv6 allowed, reverse-path anti-spoofing, every drop counted in a named counter).
/// The text starts with `table inet kiln {}` + `delete table inet kiln`, so applying it replaces the previous
/// table (for example the bootstrap) in a single transaction and never leaves the box open in between.
public enum FirewallCompiler {
    /// The nftables table Kiln owns; nothing else in the ruleset is touched.
    public static let table = "kiln"

    /// Named counters every compiled ruleset carries: `nft list counters table inet kiln` reads them.
    public static let counters = ["invalid", "spoofed", "drops-input", "drops-forward", "drops-output"]

    /// ICMPv6 that must pass for IPv6 to work at all (RFC 4890 §4.4): errors, neighbour discovery, MLD.
    static let icmpv6Local = [
        "destination-unreachable", "packet-too-big", "time-exceeded", "parameter-problem", "nd-router-solicit",
        "nd-router-advert", "nd-neighbor-solicit", "nd-neighbor-advert", "mld-listener-query", "mld-listener-report",
        "mld2-listener-report",
    ]
    /// ICMPv6 errors that must be forwarded (RFC 4890 §4.3.1).
    static let icmpv6Transit = ["destination-unreachable", "packet-too-big", "time-exceeded", "parameter-problem"]

    /// A new TCP connection begins with a SYN (and nothing else of SYN/ACK/FIN/RST). Conntrack's loose pickup
    /// (`net.netfilter.nf_conntrack_tcp_loose`, on by default) would otherwise take a stray mid-stream ACK for a new
    /// connection that a policy or a port forward then accepts, which lets an ACK scan map the box and reach a
    /// forwarded server. Dropped on input and forward whatever the sysctl says, and counted as invalid.
    static let newWithoutSYN = "tcp flags & (fin | syn | rst | ack) != syn ct state new counter name \"invalid\" drop"

    /// The default-drop ruleset kiln-init loads before any NIC comes up: loopback only, drops counted.
    public static func bootstrap() -> String {
        var w = RulesetWriter(root: "bootstrap")
        preamble(&w)
        w.block("table inet \(table)") { w in
            for name in counters where name.hasPrefix("drops-") { w.line("counter \(name) {}") }
            w.block("chain input") { w in
                w.line("type filter hook input priority filter; policy drop;")
                w.line("iif \"lo\" accept")
                w.line("counter name \"drops-input\" drop")
            }
            w.block("chain forward") { w in
                w.line("type filter hook forward priority filter; policy drop;")
                w.line("counter name \"drops-forward\" drop")
            }
            w.block("chain output") { w in
                w.line("type filter hook output priority filter; policy drop;")
                w.line("oif \"lo\" accept")
                w.line("counter name \"drops-output\" drop")
            }
        }
        return w.ruleset.text
    }

    /// The ruleset for `spec`, which should have passed `validate()` (a reference to an unknown zone or set
    /// compiles to nothing rather than crashing). `root` is the coding path of the section in the manifest.
    public static func compile(_ spec: FirewallSpec, root: String = "firewall") -> CompiledRuleset {
        var w = RulesetWriter(root: root)
        let plan = ZonePlan(spec)
        preamble(&w)
        w.block("table inet \(table)") { w in
            for name in counters { w.line("counter \(name) {}") }
            for set in spec.sets { emitSet(set, &w) }
            emitMaps(plan, spec, &w)
            if spec.defaults.antiSpoofing || spec.rules.contains(where: { $0.early == true }) {
                emitPrerouting(spec, plan, &w)
            }
            emitBaseChains(spec, plan, &w)
            for pair in plan.pairs { emitPairChain(pair, spec, plan, &w) }
            emitNAT(spec, plan, &w)
        }
        return w.ruleset
    }

    /// Kernel modules the ruleset needs, in load order, for the image's module closure. nf_tables would
    /// otherwise ask /sbin/modprobe for them at apply time, which the guest does not have. Statements the
    /// compiled ruleset does not use (`log`, `limit`, `fib`, NAT) bring no module: each one loaded costs boot time.
    public static func requiredModules(_ spec: FirewallSpec, ruleset: String) -> [String] {
        let words = statementWords(ruleset)
        var m = ["nf_tables", "nf_conntrack", "nf_defrag_ipv4", "nf_defrag_ipv6", "nft_ct", "nf_reject_ipv4", "nf_reject_ipv6",
                 "nft_reject", "nft_reject_inet", "nft_objref"]
        if words.contains("limit") { m += ["nft_limit"] }
        if words.contains("log") { m += ["nf_log_syslog", "nft_log"] }
        if words.contains("fib") || spec.defaults.antiSpoofing { m += ["nft_fib", "nft_fib_ipv4", "nft_fib_ipv6", "nft_fib_inet"] }
        if !spec.forwards.isEmpty || !spec.snat.isEmpty || !spec.masquerade.isEmpty || words.contains("snat") || words.contains("dnat") {
            m += ["nf_nat", "nft_nat", "nft_chain_nat"]
        }
        if !spec.masquerade.isEmpty || words.contains("masquerade") { m += ["nft_masq"] }
        return m
    }

    /// The bare words of an nft ruleset: quoted strings, comments, `@set` references and the names given in
    /// `table`/`chain`/`set`/`map` declarations left out, so a log prefix or a set named `log` is not taken for a
    /// statement.
    static func statementWords(_ ruleset: String) -> Set<String> {
        let declarations: Set<String> = ["table", "chain", "set", "map", "flowtable"]
        var words = Set<String>()
        for line in ruleset.split(separator: "\n") {
            var word = "", previous = "", quoted = false
            func end() {
                if !word.isEmpty, word.first != "@", word.first != "$", !declarations.contains(previous) { words.insert(word) }
                if !word.isEmpty { previous = word }
                word = ""
            }
            for c in line {
                if c == "\"" { quoted.toggle(); word = ""; continue }
                if quoted { continue }
                if c == "#" { break }
                if c.isLetter || c.isNumber || c == "_" || c == "-" || c == "@" || c == "$" { word.append(c) } else { end() }
            }
            if !quoted { end() }
        }
        return words
    }

    static func preamble(_ w: inout RulesetWriter) {
        w.line("# Generated by Kiln from the firewall section of the manifest; edit the manifest, not this file.")
        w.line("table inet \(table) {")
        w.line("}")
        w.line("delete table inet \(table)")
    }

    static func emitSet(_ set: NamedSet, _ w: inout RulesetWriter) {
        w.block("set \(set.name)", "sets.\(set.name)") { w in
            w.line("type \(set.kind.nftType)", "sets.\(set.name).type")
            w.line("flags interval", "sets.\(set.name)")
            var all: [(SetElement, String)] = set.elements.enumerated().map { ($1, "sets.\(set.name).elements[\($0)]") }
            let file = set.file ?? ""
            all += set.fileElements.map { ($0.element, "sets.\(set.name).file (\(file):\($0.line))") }
            let elements = disjoint(all)
            guard !elements.isEmpty else { return }
            w.block("elements =", "sets.\(set.name)") { w in
                for (element, origin) in elements { w.line("\(element),", origin) }
            }
        }
    }

    /// Sorted elements with the ones covered by another removed and overlapping port ranges merged:
    /// an interval set rejects overlaps, and a blocklist often lists a prefix inside another.
    static func disjoint(_ elements: [(SetElement, String)]) -> [(SetElement, String)] {
        let sorted = elements.sorted { a, b in
            switch (a.0, b.0) {
            case let (.prefix(x), .prefix(y)): return x.address != y.address ? x.address < y.address : x.prefixLength < y.prefixLength
            case let (.port(x), .port(y)): return x < y
            case (.prefix, .port): return true
            case (.port, .prefix): return false
            }
        }
        var out: [(SetElement, String)] = []
        for item in sorted {
            guard let last = out.last else { out.append(item); continue }
            switch (last.0, item.0) {
            case let (.prefix(kept), .prefix(next)) where kept.prefixLength <= next.prefixLength && kept.contains(next.address):
                continue
            case let (.port(kept), .port(next)) where kept.overlaps(next):
                if next.upper > kept.upper, let merged = try? PortRange(kept.lower, next.upper) { out[out.count - 1].0 = .port(merged) }
            default:
                out.append(item)
            }
        }
        return out
    }

    static func emitMaps(_ plan: ZonePlan, _ spec: FirewallSpec, _ w: inout RulesetWriter) {
        func map(_ name: String, _ type: String, _ entries: [(String, String, String)]) {
            w.block("map \(name)") { w in
                w.line("type \(type) : verdict")
                guard !entries.isEmpty else { return }
                w.block("elements =") { w in
                    for (key, verdict, origin) in entries { w.line("\(key) : \(verdict),", origin) }
                }
            }
        }
        var input: [(String, String, String)] = [], forward: [(String, String, String)] = [], output: [(String, String, String)] = []
        for zone in spec.zones {
            for (i, ifname) in zone.interfaces.enumerated() {
                let origin = "zones.\(zone.name).interfaces[\(i)]"
                if let pair = plan.pair(zone.name, "self") { input.append((nftQuoted(ifname.value), "jump \(pair.chain)", origin)) }
                if let pair = plan.pair("self", zone.name) {
                    output.append((nftQuoted(ifname.value), "jump \(pair.chain)", origin))
                } else if spec.defaults.output == .accept {
                    output.append((nftQuoted(ifname.value), "accept", "defaults.output"))
                }
                for to in spec.zones {
                    guard let pair = plan.pair(zone.name, to.name) else { continue }
                    for out in to.interfaces {
                        forward.append((nftQuoted(ifname.value) + " . " + nftQuoted(out.value), "jump \(pair.chain)", origin))
                    }
                }
            }
        }
        map("input-zones", "ifname", input)
        map("forward-zones", "ifname . ifname", forward)
        map("output-zones", "ifname", output)
    }

    static func emitPrerouting(_ spec: FirewallSpec, _ plan: ZonePlan, _ w: inout RulesetWriter) {
        w.block("chain raw_prerouting") { w in
            w.line("type filter hook prerouting priority raw; policy accept;")
            if spec.defaults.antiSpoofing {
                let o = "defaults.anti-spoofing"
                w.line("iif \"lo\" accept", o)
                w.line("meta nfproto ipv4 udp sport 68 udp dport 67 accept", o)
                w.line("ip6 saddr :: accept", o)
                w.line("fib saddr . iif oif missing counter name \"spoofed\" drop", o)
            }
            for i in spec.rules.indices where spec.rules[i].early == true {
                for line in ruleLines(i, spec, plan, chain: "raw_prerouting") { w.line(line, "rules[\(i)]") }
            }
        }
    }

    static func emitBaseChains(_ spec: FirewallSpec, _ plan: ZonePlan, _ w: inout RulesetWriter) {
        let drops = spec.defaults.logDrops ? "defaults.log-drops" : nil
        w.block("chain input") { w in
            w.line("type filter hook input priority filter; policy drop;")
            w.line("iif \"lo\" accept")
            w.line("icmpv6 type { \(icmpv6Local.joined(separator: ", ")) } accept")
            w.line("ct state invalid counter name \"invalid\" drop")
            w.line("ct state { established, related } accept")
            w.line(newWithoutSYN)
            w.line("iifname vmap @input-zones")
            if drops != nil { w.line("limit rate 5/second log prefix \"kiln drop input: \"", drops) }
            w.line("counter name \"drops-input\" drop")
        }
        w.block("chain forward") { w in
            w.line("type filter hook forward priority filter; policy drop;")
            w.line("ct state invalid counter name \"invalid\" drop")
            w.line("ct state { established, related } accept")
            w.line(newWithoutSYN)
            w.line("icmpv6 type { \(icmpv6Transit.joined(separator: ", ")) } accept")
            if !spec.forwards.isEmpty { w.line("ct status dnat accept", "forwards") }
            w.line("iifname . oifname vmap @forward-zones")
            if drops != nil { w.line("limit rate 5/second log prefix \"kiln drop forward: \"", drops) }
            w.line("counter name \"drops-forward\" drop")
        }
        w.block("chain output") { w in
            w.line("type filter hook output priority filter; policy drop;")
            w.line("oif \"lo\" accept")
            w.line("icmpv6 type { \(icmpv6Local.joined(separator: ", ")) } accept")
            w.line("ct state invalid counter name \"invalid\" drop")
            w.line("ct state { established, related } accept")
            w.line("oifname vmap @output-zones")
            if drops != nil { w.line("limit rate 5/second log prefix \"kiln drop output: \"", drops) }
            w.line("counter name \"drops-output\" drop")
        }
    }

    static func emitPairChain(_ pair: ZonePlan.Pair, _ spec: FirewallSpec, _ plan: ZonePlan, _ w: inout RulesetWriter) {
        w.block("chain \(pair.chain)") { w in
            for i in pair.rules {
                for line in ruleLines(i, spec, plan, chain: pair.chain) { w.line(line, "rules[\(i)]") }
            }
            let counter = pair.from == "self" ? "drops-output" : pair.to == "self" ? "drops-input" : "drops-forward"
            if let k = pair.policy {
                let p = spec.policies[k]
                let log = p.log == true ? "log prefix \(nftQuoted("kiln \(pair.chain) policy: ")) " : ""
                switch p.action {
                case .accept: w.line(log + "accept", "policies[\(k)]")
                case .drop:
                    if spec.defaults.logDrops, p.log != true {
                        w.line("limit rate 5/second log prefix \(nftQuoted("kiln drop \(pair.chain): "))", "defaults.log-drops")
                    }
                    w.line(log + "counter name \"\(counter)\" drop", "policies[\(k)]")
                case .reject:
                    w.line("meta l4proto tcp " + log + "reject with tcp reset", "policies[\(k)]")
                    w.line(log + "reject", "policies[\(k)]")
                }
            } else if pair.from == "self", spec.defaults.output == .accept {
                w.line("accept", "defaults.output")
            }
        }
    }
}

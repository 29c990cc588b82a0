import KilnConfig

/// The nftables table that hands the LAN's TCP connections to the optimizer (TPROXY), from the policy alone.
///
/// Packets of connections whose socket is already here (accepted intercepted connections, and this box's
/// transparent connections to destinations) are marked so the `fwmark → local table` rule delivers them to
/// that socket. New connections (a SYN alone) from a LAN interface go through bypass, then optimize; matched
/// ones go to the intercept port. Without a listener there (service down), TPROXY does not match and the
/// packet is forwarded as usual: the box fails open.
public enum InterceptRules {
    public static let table = "kiln_wanopt"

    public static func ruleset(_ config: WANOptConfig) -> String {
        let mark = "0x" + String(config.mark, radix: 16)
        let lans = config.lan.map { "\"\($0)\"" }.joined(separator: ", ")
        var lines = [
            "table inet \(table) {",
            "\tchain prerouting {",
            "\t\ttype filter hook prerouting priority mangle; policy accept;",
            "\t\tmeta l4proto tcp socket transparent 1 meta mark set \(mark) accept",
            "\t\tiifname != { \(lans) } return",
            "\t\ttcp flags & (fin | syn | rst | ack) != syn return",
        ]
        for match in config.bypass {
            for selector in selectors(match) { lines.append("\t\t\(selector) return") }
        }
        let optimize = config.optimize.isEmpty ? [WANOptMatch()] : config.optimize
        for match in optimize {
            for selector in selectors(match) {
                let family = selector.hasPrefix("ip6 ") || selector.hasPrefix("meta nfproto ipv6") ? "ip6" : "ip"
                lines.append("\t\t\(selector) tproxy \(family) to :\(config.interceptPort) meta mark set \(mark) accept")
            }
        }
        lines += ["\t}", "}"]
        return "table inet \(table)\ndelete table inet \(table)\n" + lines.joined(separator: "\n") + "\n"
    }

    /// One nft selector per address family the match covers.
    static func selectors(_ match: WANOptMatch) -> [String] {
        let ports = match.ports.isEmpty ? "meta l4proto tcp" : "tcp dport { \(match.ports.map(\.description).joined(separator: ", ")) }"
        let v4 = match.destinations.filter(\.address.isV4)
        let v6 = match.destinations.filter { !$0.address.isV4 }
        if match.destinations.isEmpty {
            return ["meta nfproto ipv4 \(ports)", "meta nfproto ipv6 \(ports)"]
        }
        var out: [String] = []
        if !v4.isEmpty { out.append("ip daddr { \(v4.map(\.description).joined(separator: ", ")) } \(ports)") }
        if !v6.isEmpty { out.append("ip6 daddr { \(v6.map(\.description).joined(separator: ", ")) } \(ports)") }
        return out
    }
}

import KilnTestSupport
import Foundation
import KilnConfig
import KilnSystem
import Testing
@testable import KilnWANOpt

@Suite struct InterceptTests {
    static let config = WANOptConfig(
        name: "branch", lan: [try! InterfaceName("lan"), try! InterfaceName("lan2")], peer: try! SocketAddress("10.9.1.1:7800"),
        keyFile: "/etc/kiln/wanopt.key",
        optimize: [WANOptMatch(destinations: [try! CIDR("10.2.0.0/24"), try! CIDR("2001:db8:2::/48")], ports: [try! PortRange("80"), try! PortRange("8000-8099")]),
                   WANOptMatch(destinations: [try! CIDR("10.3.0.0/16")])],
        bypass: [WANOptMatch(ports: [try! PortRange("22")])])

    @Test func rulesetFromPolicy() {
        #expect(InterceptRules.ruleset(Self.config) == """
            table inet kiln_wanopt
            delete table inet kiln_wanopt
            table inet kiln_wanopt {
            \tchain prerouting {
            \t\ttype filter hook prerouting priority mangle; policy accept;
            \t\tmeta l4proto tcp socket transparent 1 meta mark set 0x7810 accept
            \t\tiifname != { "lan", "lan2" } return
            \t\ttcp flags & (fin | syn | rst | ack) != syn return
            \t\tmeta nfproto ipv4 tcp dport { 22 } return
            \t\tmeta nfproto ipv6 tcp dport { 22 } return
            \t\tip daddr { 10.2.0.0/24 } tcp dport { 80, 8000-8099 } tproxy ip to :7810 meta mark set 0x7810 accept
            \t\tip6 daddr { 2001:db8:2::/48 } tcp dport { 80, 8000-8099 } tproxy ip6 to :7810 meta mark set 0x7810 accept
            \t\tip daddr { 10.3.0.0/16 } meta l4proto tcp tproxy ip to :7810 meta mark set 0x7810 accept
            \t}
            }

            """)
    }

    @Test func emptyPolicyOptimizesAllTCP() {
        let text = InterceptRules.ruleset(WANOptConfig(name: "x", lan: [try! InterfaceName("lan")], keyFile: "k"))
        #expect(text.contains("meta nfproto ipv4 meta l4proto tcp tproxy ip to :7810 meta mark set 0x7810 accept"))
        #expect(text.contains("meta nfproto ipv6 meta l4proto tcp tproxy ip6 to :7810 meta mark set 0x7810 accept"))
    }

    /// The kernel takes the table, twice (a restart), and the policy routing lands as `ip` shows it.
    @Test func installsInANamespaceAndAgainAfterARestart() throws {
        let name = "kwoi\(getpid())"
        _ = try? sh(["ip", "netns", "del", name])
        try run("ip netns add \(name)")
        defer { _ = try? sh(["ip", "netns", "del", name]) }
        try run("ip -n \(name) link add lan type veth peer name lanp && ip -n \(name) link add lan2 type veth peer name lan2p")
        try NetworkNamespace.run(path: "/run/netns/\(name)") {
            try Interception.install(Self.config)
            try Interception.install(Self.config)
        }
        let rules = try run("ip -n \(name) rule show")
        #expect(rules.contains("from all fwmark 0x7810 lookup 78"), "\(rules)")
        #expect(rules.components(separatedBy: "fwmark 0x7810").count == 2, "rule added twice: \(rules)")
        let route = try run("ip -n \(name) route show table 78")
        #expect(route.contains("local default dev lo"), "\(route)")
        let table = try run("ip netns exec \(name) nft list table inet kiln_wanopt")
        #expect(table.contains("tproxy ip to :7810") && table.contains("socket transparent 1"), "\(table)")
    }
}

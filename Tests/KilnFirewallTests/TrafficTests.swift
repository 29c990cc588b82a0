import Glibc
import KilnConfig
import Testing
@testable import KilnFirewall

/// Real packets through a firewall namespace that forwards between LAN, WAN and DMZ namespaces, each
/// joined to it by a veth pair. Everything stays inside namespaces this test makes and deletes.
@Suite(.serialized) struct TrafficTests {
    static let specJSON = #"""
    {"zones": {"lan": ["lan"], "wan": ["wan"], "dmz": ["dmz"]},
     "sets": {"blocklist": {"type": "ipv4", "elements": ["198.51.100.77", "203.0.113.0/24"]}},
     "policies": [{"from": "lan", "to": "wan", "action": "accept"}, {"from": "lan", "to": "dmz", "action": "accept"},
                  {"from": "wan", "to": "lan", "action": "drop"}],
     "rules": [{"from": "wan", "to": "self", "proto": "tcp", "dport": 22, "action": "accept", "log": true, "limit": "50/second"},
               {"from": "wan", "to": "dmz", "proto": "tcp", "dport": 8081, "action": "reject"},
               {"from": "wan", "to": "dmz", "proto": "udp", "dport": 9000, "action": "accept"},
               {"from": "wan", "source": "@blocklist", "action": "drop", "early": true}],
     "forwards": [{"from": "wan", "proto": "tcp", "port": 80, "to": "10.30.0.10", "to-port": 8080}],
     "defaults": {"anti-spoofing": ANTISPOOF}}
    """#

    struct Lab {
        let lab: NamespaceLab
        let fw: String, lan: String, wan: String, dmz: String
    }

    static func build(_ lab: NamespaceLab) throws -> Lab {
        let fw = try lab.add("fw"), lan = try lab.add("lan"), wan = try lab.add("wan"), dmz = try lab.add("dmz")
        try lab.link(fw, "lan", lan, "eth0")
        try lab.link(fw, "wan", wan, "eth0")
        try lab.link(fw, "dmz", dmz, "eth0")
        try lab.ip(fw, "addr add 10.10.0.1/24 dev lan")
        try lab.ip(fw, "addr add 198.51.100.1/24 dev wan")
        try lab.ip(fw, "addr add 10.30.0.1/24 dev dmz")
        try lab.ip(lan, "addr add 10.10.0.2/24 dev eth0")
        try lab.ip(lan, "route add default via 10.10.0.1")
        try lab.ip(wan, "addr add 198.51.100.2/24 dev eth0")
        try lab.ip(wan, "addr add 198.51.100.77/32 dev eth0")
        try lab.ip(wan, "addr add 10.10.0.99/32 dev eth0")
        try lab.ip(wan, "route add default via 198.51.100.1")
        try lab.ip(dmz, "addr add 10.30.0.10/24 dev eth0")
        try lab.ip(dmz, "route add default via 10.30.0.1")
        // Forwarding on; the kernel's own reverse-path filter off, so only the ruleset's fib check can drop spoofs.
        let r = try sh(["ip", "netns", "exec", fw, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0",
                        "net.ipv4.conf.default.rp_filter=0", "net.ipv4.conf.wan.rp_filter=0", "net.ipv4.conf.lan.rp_filter=0"])
        guard r.status == 0 else { throw ValueError("sysctl: \(r.output)") }
        return Lab(lab: lab, fw: fw, lan: lan, wan: wan, dmz: dmz)
    }

    static func apply(_ ns: String, antiSpoofing: Bool) throws {
        let spec = try decodeSpec(specJSON.replacingFirst("ANTISPOOF", with: antiSpoofing ? "true" : "false"))
        #expect(spec.validate() == [])
        try inNamespace(ns) {
            let nft = try Nftables()
            try nft.apply(FirewallCompiler.bootstrap())
            try nft.apply(FirewallCompiler.compile(spec))
        }
    }

    @Test func policiesRulesForwardsAndAntiSpoofing() throws {
        let lab = NamespaceLab("t")
        defer { lab.destroy() }
        let l = try Self.build(lab)
        try Self.apply(l.fw, antiSpoofing: true)

        let wanListener = try inNamespace(l.wan) { try boundSocket("0.0.0.0", 5001, tcp: true) }
        let lanListener = try inNamespace(l.lan) { try boundSocket("0.0.0.0", 5001, tcp: true) }
        let sshListener = try inNamespace(l.fw) { try boundSocket("0.0.0.0", 22, tcp: true) }
        let telnetListener = try inNamespace(l.fw) { try boundSocket("0.0.0.0", 23, tcp: true) }
        let dmzListeners = try inNamespace(l.dmz) { (try boundSocket("0.0.0.0", 8080, tcp: true), try boundSocket("0.0.0.0", 8081, tcp: true)) }
        let dmzUDP = try inNamespace(l.dmz) { try boundSocket("0.0.0.0", 9000, tcp: false) }
        defer { for fd in [wanListener, lanListener, sshListener, telnetListener, dmzListeners.0, dmzListeners.1, dmzUDP] { close(fd) } }

        // An allowed flow and its return traffic: lan → wan is accepted, the SYN-ACK comes back as established.
        #expect(try inNamespace(l.lan) { tcpConnect("198.51.100.2", 5001) } == .connected)
        // No policy lets wan reach lan: dropped silently.
        #expect(try inNamespace(l.wan) { tcpConnect("10.10.0.2", 5001) } == .timedOut)
        // A reject rule answers with a TCP reset.
        #expect(try inNamespace(l.wan) { tcpConnect("10.30.0.10", 8081) } == .refused)
        // The box itself: ssh allowed from wan, anything else dropped.
        #expect(try inNamespace(l.wan) { tcpConnect("198.51.100.1", 22) } == .connected)
        #expect(try inNamespace(l.wan) { tcpConnect("198.51.100.1", 23) } == .timedOut)
        // Port forward 198.51.100.1:80 → 10.30.0.10:8080 reaches the DMZ server with the client's address.
        #expect(try inNamespace(l.wan) { tcpConnect("198.51.100.1", 80) } == .connected)
        #expect(acceptedPeer(dmzListeners.0) == "198.51.100.2")
        // A blocklisted source is dropped early, even for an allowed service.
        #expect(try inNamespace(l.wan) { tcpConnect("198.51.100.1", 22, from: "198.51.100.77") } == .timedOut)

        // A genuine wan source reaches the DMZ UDP service; a LAN address arriving on wan does not.
        try inNamespace(l.wan) { try udpSend("10.30.0.10", 9000, from: "198.51.100.2", "genuine") }
        #expect(udpReceive(dmzUDP) == ["genuine"])
        try inNamespace(l.wan) { try udpSend("10.30.0.10", 9000, from: "10.10.0.99", "spoofed") }
        #expect(udpReceive(dmzUDP) == [])
        let counters = try inNamespace(l.fw) { try Nftables().run("list counter inet kiln spoofed") }
        #expect(!counters.contains("packets 0 "), "\(counters)")

        // Control: with anti-spoofing off the same spoofed datagram gets through, so the check above is the ruleset's doing.
        try Self.apply(l.fw, antiSpoofing: false)
        try inNamespace(l.wan) { try udpSend("10.30.0.10", 9000, from: "10.10.0.99", "spoofed") }
        #expect(udpReceive(dmzUDP) == ["spoofed"])
    }

    /// A bare ACK from the WAN (an ACK scan, or `hping3 -A`) opens nothing: conntrack's loose pickup would make it
    /// a new connection that the port forward or an accept rule then passes, and the server behind it or the box
    /// itself would answer with a RST.
    @Test func bareACKFromTheWANReachesNothingAndNothingAnswers() throws {
        let lab = NamespaceLab("a")
        defer { lab.destroy() }
        let l = try Self.build(lab)
        try Self.apply(l.fw, antiSpoofing: true)
        // The kernel's default, spelled out: the ruleset must hold whatever it says.
        let r = try sh(["ip", "netns", "exec", l.fw, "sysctl", "-qw", "net.netfilter.nf_conntrack_tcp_loose=1"])
        #expect(r.status == 0, "\(r.output)")
        let dmzListener = try inNamespace(l.dmz) { try boundSocket("0.0.0.0", 8080, tcp: true) }
        let sshListener = try inNamespace(l.fw) { try boundSocket("0.0.0.0", 22, tcp: true) }
        let dmzSeen = try inNamespace(l.dmz) { try tcpObserver() }
        let wanSeen = try inNamespace(l.wan) { try tcpObserver() }
        defer { for fd in [dmzListener, sshListener, dmzSeen, wanSeen] { close(fd) } }

        // The forwarded port (198.51.100.1:80 → 10.30.0.10:8080), an accepted service on the box (22) and a
        // reject rule (8081 in the DMZ): each gets one bare ACK.
        try inNamespace(l.wan) {
            try sendBareACK(from: "198.51.100.2", 40001, to: "198.51.100.1", 80)
            try sendBareACK(from: "198.51.100.2", 40002, to: "198.51.100.1", 22)
            try sendBareACK(from: "198.51.100.2", 40003, to: "10.30.0.10", 8081)
        }
        #expect(observedSegments(dmzSeen) == [], "a bare ACK reached the DMZ")
        #expect(observedSegments(wanSeen) == [], "a bare ACK was answered")
        let invalid = try inNamespace(l.fw) { try Nftables().run("list counter inet kiln invalid") }
        #expect(invalid.contains("packets 3 "), "\(invalid)")

        // A real connection through the forward still works, and the observers do see what arrives: without the
        // ruleset the same bare ACK to the box is answered with a RST.
        #expect(try inNamespace(l.wan) { tcpConnect("198.51.100.1", 80) } == .connected)
        #expect(observedSegments(dmzSeen).contains { $0.hasPrefix("198.51.100.2:") && $0.contains("> 8080 flags 0x2") })
        _ = observedSegments(wanSeen, timeoutMs: 100)
        try inNamespace(l.fw) { _ = try Nftables().run("delete table inet kiln") }
        try inNamespace(l.wan) { try sendBareACK(from: "198.51.100.2", 40004, to: "198.51.100.1", 22) }
        #expect(observedSegments(wanSeen) == ["198.51.100.1:22 > 40004 flags 0x4"])
    }

    @Test func bootstrapClosesEverythingButLoopback() throws {
        let lab = NamespaceLab("b")
        defer { lab.destroy() }
        let l = try Self.build(lab)
        try inNamespace(l.fw) { try Nftables().apply(FirewallCompiler.bootstrap()) }
        let wanListener = try inNamespace(l.wan) { try boundSocket("0.0.0.0", 5001, tcp: true) }
        let fwListener = try inNamespace(l.fw) { try boundSocket("0.0.0.0", 22, tcp: true) }
        defer { close(wanListener); close(fwListener) }
        #expect(try inNamespace(l.lan) { tcpConnect("198.51.100.2", 5001, timeoutMs: 700) } == .timedOut)
        #expect(try inNamespace(l.wan) { tcpConnect("198.51.100.1", 22, timeoutMs: 700) } == .timedOut)
        #expect(try inNamespace(l.fw) { tcpConnect("127.0.0.1", 22) } == .connected)
        // A broken ruleset fails as a whole; the box stays closed.
        var broken = try decodeSpec(Self.specJSON.replacingFirst("ANTISPOOF", with: "true"))
        broken.rules.append(Rule(from: "lan", to: "wan", action: .accept, raw: "tcp dport 0-70000"))
        try inNamespace(l.fw) {
            #expect(throws: NftError.self) { try Nftables().apply(FirewallCompiler.compile(broken)) }
        }
        #expect(try inNamespace(l.lan) { tcpConnect("198.51.100.2", 5001, timeoutMs: 700) } == .timedOut)
    }
}

import KilnConfig
import Testing
@testable import KilnFirewall

/// Every manifest error class with its exact path and message: value errors while decoding,
/// cross-field errors from `validate()`.
@Suite struct SpecTests {
    static let zones = #""zones": {"lan": {"interfaces": ["lan.10", "lan.20"]}, "wan": ["wan"], "dmz": ["dmz"]}"#

    func issues(_ body: String) throws -> [String] {
        try decodeSpec("{\(Self.zones), \(body)}").validate().map(\.description)
    }

    @Test func decodesTheDocumentedShape() throws {
        let spec = try decodeSpec(#"""
        {"zones": {"lan": {"interfaces": ["lan.10"]}, "wan": ["wan"]},
         "sets": {"admins": {"type": "ipv4", "elements": ["192.0.2.0/28"]}},
         "policies": [{"from": "lan", "to": "wan", "action": "accept"}],
         "rules": [{"from": "wan", "to": "self", "proto": "tcp", "dport": 22, "source": "@admins", "action": "accept", "log": true, "limit": "10/second"}],
         "forwards": [{"from": "wan", "proto": "tcp", "port": 80, "to": "10.30.0.10", "to-port": 8080}],
         "masquerade": ["wan"], "snat": [{"out": "wan", "to": "198.51.100.2"}],
         "defaults": {"anti-spoofing": true, "log-drops": false}}
        """#)
        #expect(spec.zones.map(\.name) == ["lan", "wan"])
        #expect(spec.zones[0].interfaces == [try InterfaceName("lan.10")])
        #expect(spec.rules[0].dport == .ports([try PortRange(22, 22)]))
        #expect(spec.rules[0].source == .set("admins"))
        #expect(spec.rules[0].limit?.description == "10/second")
        #expect(spec.forwards[0].toPort == 8080)
        #expect(spec.defaults == Defaults())
        #expect(spec.validate() == [])
        let roundTrip = try KilnJSON.decode(FirewallSpec.self, from: try KilnJSON.encode(spec))
        #expect(roundTrip == spec)
    }

    // MARK: Value errors (DecodingError at the coding path)

    @Test func badPortRange() {
        #expect(decodingFailure(#"{"rules": [{"from": "wan", "to": "dmz", "proto": "tcp", "dport": "8090-8080", "action": "drop"}]}"#)
            == "firewall.rules[0].dport: port range 8090-8080 is empty or starts at 0")
        #expect(decodingFailure(#"{"rules": [{"from": "wan", "to": "dmz", "proto": "tcp", "dport": [80, "80-x"], "action": "drop"}]}"#)
            == "firewall.rules[0].dport[1]: '80-x' is not a port or port range (1-65535, e.g. 22 or 8000-8099)")
        #expect(decodingFailure(#"{"forwards": [{"from": "wan", "proto": "tcp", "port": 70000, "to": "10.0.0.1"}]}"#)
            == "firewall.forwards[0].port: port 70000 is out of range 1-65535")
        #expect(decodingFailure(#"{"forwards": [{"from": "wan", "proto": "tcp", "port": 80, "to": "10.0.0.1", "to-port": "81-82"}]}"#)
            == "firewall.forwards[0].to-port: to-port must be a single port (81-82 given); omit it to keep the original port")
    }

    @Test func invalidSetElement() {
        #expect(decodingFailure(#"{"sets": {"bl": {"type": "ipv4", "elements": ["203.0.113.0/24", "203.0.113.0/33"]}}}"#)
            == "firewall.sets.bl.elements[1]: prefix length /33 is out of range for 203.0.113.0 (0...32)")
        #expect(decodingFailure(#"{"sets": {"bl": {"type": "ipv4", "elements": ["2001:db8::/32"]}}}"#)
            == "firewall.sets.bl.elements[0]: '2001:db8::/32' is an IPv6 prefix in a set of type ipv4")
        #expect(decodingFailure(#"{"sets": {"bl": {"type": "ipv4", "elements": ["10.1.2.3/8"]}}}"#)
            == "firewall.sets.bl.elements[0]: '10.1.2.3/8' has host bits set; did you mean 10.0.0.0/8?")
        #expect(decodingFailure(#"{"sets": {"bl": {"type": "ipv4", "elements": ["10.0.0.300"]}}}"#)
            == "firewall.sets.bl.elements[0]: '10.0.0.300' is not a CIDR: '10.0.0.300' is not an IPv4 address (bad octet '300')")
        #expect(decodingFailure(#"{"sets": {"bl": {"type": "mac", "elements": []}}}"#)
            == "firewall.sets.bl.type: 'mac' is not a set type (expected ipv4, ipv6 or port)")
        #expect(decodingFailure(#"{"sets": {"bad-name": {"type": "ipv4"}}}"#)
            == "firewall.sets.bad-name: set name 'bad-name' may hold only letters, digits and '_'")
    }

    @Test func invalidSetFileLine() throws {
        #expect(throws: ValueError("blocklist.txt:3: prefix length /40 is out of range for 10.0.0.0 (0...32)")) {
            _ = try NamedSet.parseFile("# header\n10.0.0.0/8\n10.0.0.0/40\n", kind: .ipv4, file: "blocklist.txt")
        }
        let parsed = try NamedSet.parseFile("  10.0.0.0/8  # private\n\n192.0.2.1\r\n", kind: .ipv4, file: "f")
        #expect(parsed.map(\.line) == [1, 3])
        #expect(parsed.map(\.element.description) == ["10.0.0.0/8", "192.0.2.1"])
    }

    @Test func otherValueErrors() {
        #expect(decodingFailure(#"{"rules": [{"from": "wan", "to": "dmz", "action": "allow"}]}"#)
            == "firewall.rules[0].action: 'allow' is not an action (expected accept, drop or reject)")
        #expect(decodingFailure(#"{"rules": [{"from": "wan", "to": "dmz", "action": "drop", "limit": "ten/second"}]}"#)
            == "firewall.rules[0].limit: 'ten/second' is not a rate limit (expected e.g. 10/second or 100/minute burst 20)")
        #expect(decodingFailure(#"{"rules": [{"from": "wan", "to": "dmz", "proto": "icmp", "icmp-type": ["echo-request", "ping"], "action": "accept"}]}"#)
            == "firewall.rules[0].icmp-type[1]: 'ping' is not an ICMP or ICMPv6 type (e.g. echo-request, destination-unreachable, nd-neighbor-solicit)")
        #expect(decodingFailure(#"{"zones": {"self": ["eth0"]}}"#)
            == "firewall.zones.self: 'self' is the firewall itself and is always defined; name the zone differently")
        #expect(decodingFailure(#"{"zones": {"lan": ["eth/0"]}}"#)
            == "firewall.zones.lan[0]: interface name 'eth/0' may not contain '/', ':' or spaces")
    }

    // MARK: Cross-field errors (validate)

    @Test func unknownZone() throws {
        #expect(try issues(#""policies": [{"from": "lna", "to": "wan", "action": "accept"}]"#)
            == ["firewall.policies[0].from: unknown zone 'lna'; did you mean 'lan'?"])
        #expect(try issues(#""policies": [{"from": "lan", "to": "internet", "action": "accept"}]"#)
            == ["firewall.policies[0].to: unknown zone 'internet' (zones: lan, wan, dmz, self)"])
        #expect(try issues(#""rules": [{"from": "wan", "to": "dzm", "action": "drop"}]"#)
            == ["firewall.rules[0].to: unknown zone 'dzm'; did you mean 'dmz'?"])
        #expect(try issues(#""masquerade": ["self"], "snat": [{"out": "guest", "to": "192.0.2.1"}]"#)
            == ["firewall.masquerade[0]: 'self' cannot be used here; name a zone",
                "firewall.snat[0].out: unknown zone 'guest' (zones: lan, wan, dmz)"])
    }

    @Test func overlappingForward() throws {
        #expect(try issues(#""forwards": [{"from": "wan", "proto": "tcp", "port": "80-81", "to": "10.30.0.10"}, {"from": "wan", "proto": "udp", "port": 80, "to": "10.30.0.11"}, {"from": "wan", "proto": "tcp", "port": 81, "to": "10.30.0.12", "to-port": 8081}]"#)
            == ["firewall.forwards[2]: tcp port 81 from zone 'wan' overlaps firewall.forwards[0] (tcp port 80-81)"])
        // Different public destinations do not overlap.
        #expect(try issues(#""forwards": [{"from": "wan", "proto": "tcp", "port": 80, "to": "10.30.0.10", "destination": "198.51.100.2"}, {"from": "wan", "proto": "tcp", "port": 80, "to": "10.30.0.11", "destination": "198.51.100.3"}]"#) == [])
    }

    @Test func ruleConsistency() throws {
        #expect(try issues(#""rules": [{"from": "wan", "to": "self", "dport": 22, "action": "accept"}]"#)
            == ["firewall.rules[0].dport: ports need proto tcp, udp or sctp"])
        #expect(try issues(#""rules": [{"from": "wan", "to": "self", "proto": "tcp", "source": "@admins", "action": "accept"}]"#)
            == ["firewall.rules[0].source: unknown set 'admins'"])
        #expect(try issues(#""sets": {"webports": {"type": "port", "elements": [80]}}, "rules": [{"from": "wan", "to": "self", "source": "@webports", "action": "accept"}]"#)
            == ["firewall.rules[0].source: set 'webports' holds ports, not addresses"])
        #expect(try issues(#""rules": [{"from": "wan", "to": "self", "source": "10.0.0.0/8", "destination": "2001:db8::/32", "action": "accept"}]"#)
            == ["firewall.rules[0]: matches IPv4 and IPv6 at once (source, destination and proto disagree), so it can never match"])
        #expect(try issues(#""rules": [{"from": "wan", "to": "self", "proto": "icmp", "icmp-type": "nd-neighbor-solicit", "action": "accept"}]"#)
            == ["firewall.rules[0].icmp-type[0]: 'nd-neighbor-solicit' is an ICMPv6 type; use proto icmpv6"])
        #expect(try issues(#""rules": [{"from": "wan", "to": "dmz", "source": "10.0.0.0/8", "action": "accept", "early": true}]"#)
            == ["firewall.rules[0].to: an early rule runs before routing, so it has no 'to'; remove it or drop 'early'",
                "firewall.rules[0].action: an early rule can only drop (accept given)"])
        #expect(try issues(#""rules": [{"from": "wan", "action": "accept"}]"#) == ["firewall.rules[0]: missing 'to' (a zone or self)"])
    }

    @Test func zonesAndPolicies() throws {
        let spec = try decodeSpec(#"{"zones": {"lan": ["lan.10"], "guest": ["lan.10", "wlan0"]}, "policies": [{"from": "lan", "to": "guest", "action": "accept"}, {"from": "lan", "to": "guest", "action": "drop"}]}"#)
        #expect(spec.validate(interfaces: [try InterfaceName("lan.10")]).map(\.description) == [
            "firewall.zones.guest.interfaces[0]: interface 'lan.10' is already in zone 'lan'",
            "firewall.zones.guest.interfaces[1]: zone 'guest' names interface 'wlan0', which the appliance does not define",
            "firewall.policies[1]: a policy from 'lan' to 'guest' is already given by firewall.policies[0]",
        ])
    }
}

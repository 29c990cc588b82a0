import KilnConfig
import Testing
@testable import KilnDHCP

/// The manifest section decoded through KilnJSON (the YAML decoder hands the same Decodable the same tree).
func decodeSection(_ json: String) throws -> DHCPSection { try KilnJSON.decode(DHCPSection.self, from: Array(json.utf8)) }

func decodingMessage(_ json: String) -> String {
    do { _ = try decodeSection(json); return "no error" } catch let DecodingError.dataCorrupted(ctx) {
        return describePath(ctx.codingPath) + ": " + ctx.debugDescription
    } catch { return "\(error)" }
}

let example = """
{"lan.10": {"pool": "10.10.0.100-10.10.0.199", "router": "10.10.0.1", "dns": ["10.10.0.1"], "domain": "branch.example",
 "lease": 3600, "mtu": 1500, "routes": [{"to": "10.99.0.0/16", "via": "10.10.0.1"}],
 "static": [{"mac": "52:54:00:aa:00:01", "address": "10.10.0.50"}]}}
"""

@Suite struct SpecTests {
    let addresses: [InterfaceName: [CIDR]] = [try! InterfaceName("lan.10"): [try! CIDR("10.10.0.1/24")],
                                              try! InterfaceName("lan.20"): [try! CIDR("10.20.0.1/24")]]

    @Test func decodesTheManifestExample() throws {
        let s = try decodeSection(example)
        let seg = try #require(s.segments.first)
        #expect(seg.interface.value == "lan.10")
        #expect(seg.spec.pool == (try IPv4Range("10.10.0.100-10.10.0.199")) && seg.spec.pool.count == 100)
        #expect(seg.spec.router == v4("10.10.0.1") && seg.spec.dns == [v4("10.10.0.1")] && seg.spec.domain == "branch.example")
        #expect(seg.spec.lease == 3600 && seg.spec.mtu == 1500)
        #expect(seg.spec.routes == [DHCPRouteSpec(to: try CIDR("10.99.0.0/16"), via: v4("10.10.0.1"))])
        #expect(seg.spec.staticLeases == [DHCPStaticLease(mac: try MACAddress("52:54:00:aa:00:01"), address: v4("10.10.0.50"))])
        #expect(s.validate(addresses: addresses).isEmpty)
        // Encodes back to the same tree.
        #expect(try KilnJSON.decode(DHCPSection.self, from: KilnJSON.encode(s)) == s)
    }

    @Test func defaultsAndBadValuesAreRejectedWithPaths() {
        #expect((try? decodeSection(#"{"lan.10": {"pool": "10.10.0.100-10.10.0.110"}}"#))?.segments.first?.spec.lease == 3600)
        let cases: [(String, String)] = [
            (#"{"lan.10": {"pool": "10.10.0.200-10.10.0.100"}}"#, "lan.10.pool: address range 10.10.0.200-10.10.0.100 is empty"),
            (#"{"lan.10": {"pool": "10.10.0.100"}}"#, "lan.10.pool: '10.10.0.100' is not an address range"),
            (#"{"lan.10": {"pool": "10.10.0.1-10.10.0.9", "leas": 5}}"#, "lan.10.leas: unknown key 'leas' in a DHCP pool"),
            (#"{"lan.10": {"pool": "10.10.0.1-10.10.0.9", "lease": 10}}"#, "lan.10.lease: lease 10 s is out of range"),
            (#"{"lan.10": {"pool": "10.10.0.1-10.10.0.9", "mtu": 20}}"#, "lan.10.mtu: mtu 20 is out of range 68-65535"),
            (#"{"lan.10": {"pool": "10.10.0.1-10.10.0.9", "dns": ["10.0.0.300"]}}"#, "lan.10.dns[0]: '10.0.0.300' is not an IPv4 address"),
            (#"{"lan.10": {"pool": "10.10.0.1-10.10.0.9", "domain": "bad_domain"}}"#, "lan.10.domain: 'bad_domain' is not a domain name"),
            (#"{"lan.10": {"pool": "10.10.0.1-10.10.0.9", "routes": [{"to": "10.99.0.1/16", "via": "10.10.0.1"}]}}"#,
             "lan.10.routes[0].to: route destination 10.99.0.1/16 has host bits set"),
            (#"{"lan.10": {"pool": "10.10.0.1-10.10.0.9", "routes": [{"to": "fd00::/8", "via": "10.10.0.1"}]}}"#,
             "lan.10.routes[0].to: route destination fd00::/8 is not IPv4"),
            (#"{"lan.10": {"pool": "10.10.0.1-10.10.0.9", "static": [{"mac": "01:00:5e:00:00:01", "address": "10.10.0.5"}]}}"#,
             "lan.10.static[0].mac: '01:00:5e:00:00:01' is a multicast MAC"),
            (#"{"lan/10": {"pool": "10.10.0.1-10.10.0.9"}}"#, "lan/10: interface name 'lan/10' may not contain"),
        ]
        for (json, want) in cases {
            let got = decodingMessage(json)
            #expect(got.hasPrefix(want), "\(json) gave \(got)")
        }
    }

    @Test func crossFieldIssuesNameTheirPaths() throws {
        let s = try decodeSection("""
        {"lan.10": {"pool": "10.10.0.1-10.10.1.10", "router": "10.30.0.1", "routes": [{"to": "10.99.0.0/16", "via": "192.0.2.1"}],
                    "static": [{"mac": "52:54:00:aa:00:01", "address": "10.20.0.5"}, {"mac": "52:54:00:aa:00:01", "address": "10.10.0.1"}]},
         "lan.20": {"pool": "10.10.0.5-10.10.0.6"},
         "wan": {"pool": "192.0.2.10-192.0.2.20"}}
        """)
        let issues = s.validate(addresses: addresses).map(\.description)
        let expected = [
            "router.dhcp.lan.10.pool: pool 10.10.0.1-10.10.1.10 is not inside the host addresses of lan.10's subnet 10.10.0.0/24",
            "router.dhcp.lan.10.pool: pool 10.10.0.1-10.10.1.10 contains the interface's own address 10.10.0.1",
            "router.dhcp.lan.10.router: router 10.30.0.1 is outside the subnet 10.10.0.0/24",
            "router.dhcp.lan.10.routes[0].via: gateway 192.0.2.1 is not on the subnet 10.10.0.0/24; clients cannot reach it",
            "router.dhcp.lan.10.static[0].address: static address 10.20.0.5 is outside the host addresses of subnet 10.10.0.0/24",
            "router.dhcp.lan.10.static[1].mac: MAC 52:54:00:aa:00:01 already has a static lease at static[0]",
            "router.dhcp.lan.10.static[1].address: static address 10.10.0.1 is the interface's own address",
            "router.dhcp.lan.20.pool: pool 10.10.0.5-10.10.0.6 overlaps the pool 10.10.0.1-10.10.1.10 of lan.10",
            "router.dhcp.lan.20.pool: pool 10.10.0.5-10.10.0.6 is not inside the host addresses of lan.20's subnet 10.20.0.0/24",
            "router.dhcp.wan: interface wan has no IPv4 address; a DHCP pool needs one to serve from (add it under interfaces)",
        ]
        #expect(issues == expected)
        #expect(throws: DHCPConfigError.self) { try DHCPServerConfig.compile(s, addresses: addresses) }
    }

    @Test func optionBudgetIsChecked() throws {
        let routes = (0..<60).map { #"{"to": "10.\#($0).0.0/16", "via": "10.10.0.1"}"# }.joined(separator: ",")
        let s = try decodeSection(#"{"lan.10": {"pool": "10.10.0.100-10.10.0.110", "router": "10.10.0.1", "routes": [\#(routes)]}}"#)
        let issues = s.validate(addresses: addresses)
        #expect(issues.count == 1 && issues[0].message.contains("more than the 308"))
    }

    @Test func compilesAndRoundTripsTheRuntimeConfig() throws {
        let s = try decodeSection(example)
        let config = try DHCPServerConfig.compile(s, addresses: addresses, leaseDirectory: "/var/lib/kiln/dhcp")
        #expect(config.interfaces.count == 1)
        let ifc = config.interfaces[0]
        #expect(ifc.address == (try CIDR("10.10.0.1/24")) && ifc.leaseFile == "/var/lib/kiln/dhcp/lan.10.leases")
        let json = try KilnJSON.encode(config).serialized
        #expect(json.hasPrefix(#"{"version":1,"interfaces":[{"name":"lan.10","address":"10.10.0.1/24","spec":{"pool":"10.10.0.100-10.10.0.199""#))
        #expect(try KilnJSON.decode(DHCPServerConfig.self, from: Array(json.utf8)) == config)
    }
}

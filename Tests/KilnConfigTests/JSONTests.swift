import KilnConfig
import KilnTestSupport
import Testing

struct JSONTests {
    @Test func roundTripsGuestConfig() throws {
        let config = GuestConfig(
            name: "r", hostname: "r", kernelRelease: "6.1.0-1-cloud-amd64",
            interfaces: [GuestInterface(name: try InterfaceName("wan"), mac: try MACAddress("52:54:00:00:01:01"), pciIndex: nil,
                                        addresses: [try CIDR("198.51.100.2/24"), try CIDR("2001:db8::2/64")], mtu: 1500)],
            routes: [GuestRoute(to: try CIDR("0.0.0.0/0"), via: try IPAddress("198.51.100.1"), dev: nil, metric: 10)],
            services: [GuestService(name: "dhcp", argv: ["/sbin/kiln-init", "service", "dhcp"], restart: .onFailure)])
        let text = try KilnJSON.encode(config).serialized
        let back = try KilnJSON.decode(GuestConfig.self, from: Array(text.utf8))
        #expect(back == config)
        #expect(text.contains("\"restart\":\"on-failure\""))
    }

    /// Members written through a nested container after it was handed out still land in the parent.
    @Test func nestedContainersAreWrittenBack() throws {
        struct Outer: Encodable {
            func encode(to encoder: Encoder) throws {
                var c = encoder.container(keyedBy: AnyCodingKey.self)
                var zones = c.nestedContainer(keyedBy: AnyCodingKey.self, forKey: AnyCodingKey(stringValue: "zones"))
                var list = c.nestedUnkeyedContainer(forKey: AnyCodingKey(stringValue: "list"))
                try zones.encode(["lan"], forKey: AnyCodingKey(stringValue: "inside"))
                try list.encode(1)
                var inner = list.nestedContainer(keyedBy: AnyCodingKey.self)
                try inner.encode(true, forKey: AnyCodingKey(stringValue: "deep"))
                try c.encode("x", forKey: AnyCodingKey(stringValue: "after"))
            }
        }
        #expect(try KilnJSON.encode(Outer()).serialized == #"{"zones":{"inside":["lan"]},"list":[1,{"deep":true}],"after":"x"}"#)
    }

    @Test func parserRejectsBadDocuments() {
        for bad in ["", "{", "[1,]", "{\"a\":1,\"a\":2}", "01", "\"\\x\"", "[1] 2", "\"\u{01}\"", "1e", "-"] {
            #expect(throws: JSONParser.Error.self, "\(bad)") { try JSONParser.parse(bad) }
        }
    }

    @Test func parserHandlesEscapesAndNumbers() throws {
        let v = try JSONParser.parse(#"{"s":"a\"\\\n\u00e9\ud83d\ude00","i":-12,"d":1.5e2,"b":[true,false,null]}"#)
        #expect(v["s"] == .string("a\"\\\né😀"))
        #expect(v["i"] == .int(-12))
        #expect(v["d"] == .double(150))
        #expect(v.serialized == #"{"s":"a\"\\\né😀","i":-12,"d":150,"b":[true,false,null]}"#)
    }

    @Test func deepNestingIsBounded() {
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        #expect(throws: JSONParser.Error.self) { try JSONParser.parse(deep) }
    }

    /// Random JSON-ish bytes: each is rejected with the parser's own error or parsed into a value that serializes
    /// and parses back to itself; both outcomes must occur, or the generator tests nothing.
    @Test func randomInputIsRejectedCleanlyOrRoundTrips() {
        var rng = SplitMix.seeded("randomInputIsRejectedCleanlyOrRoundTrips", fixed: 0x4b69_6c6e_4a53_4f4e)
        let alphabet = Array(#"{}[]",:0123456789.eE+-truefalsn\u"#.utf8)
        var accepted = 0, rejected = 0
        for _ in 0..<20_000 {
            let n = Int.random(in: 0..<40, using: &rng)
            let bytes = (0..<n).map { _ in alphabet.randomElement(using: &rng) ?? 0 }
            do {
                let value = try JSONParser.parse(bytes)
                accepted += 1
                #expect(try JSONParser.parse(Array(value.serialized.utf8)) == value, "\(String(decoding: bytes, as: UTF8.self))")
            } catch is JSONParser.Error {
                rejected += 1
            } catch {
                Issue.record("\(String(decoding: bytes, as: UTF8.self)): not the parser's error: \(error)")
            }
        }
        #expect(accepted > 0 && rejected > 0, "accepted \(accepted), rejected \(rejected)")
    }
}

struct AddressTests {
    @Test func ipv6Canonical() throws {
        #expect(try IPv6Address("2001:db8:0:0:0:0:0:1").description == "2001:db8::1")
        #expect(try IPv6Address("::").description == "::")
        #expect(try IPv6Address("::ffff:192.0.2.1").description == "::ffff:c000:201")
        #expect(throws: ValueError.self) { try IPv6Address("1::2::3") }
        #expect(throws: ValueError.self) { try IPv6Address("12345::") }
    }

    @Test func cidrNetworkAndContains() throws {
        let c = try CIDR("10.1.2.3/8")
        #expect(c.network.description == "10.0.0.0")
        #expect(!c.isNetwork)
        #expect(c.contains(try IPAddress("10.200.0.1")))
        #expect(!c.contains(try IPAddress("11.0.0.1")))
        #expect(try CIDR("2001:db8::1/32").network.description == "2001:db8::")
    }

    @Test func rejectsBadValues() throws {
        #expect(throws: ValueError.self) { try IPv4Address("1.2.3") }
        #expect(throws: ValueError.self) { try IPv4Address("01.2.3.4") }
        #expect(throws: ValueError.self) { try MACAddress("01:00:5e:00:00:01") }
        #expect(throws: ValueError.self) { try InterfaceName("a-very-long-interface") }
        #expect(throws: ValueError.self) { try PortRange("90-80") }
        #expect(throws: ValueError.self) { try PortRange("0") }
        #expect(try PortRange("8000-8099").overlaps(PortRange("8099")))
    }
}

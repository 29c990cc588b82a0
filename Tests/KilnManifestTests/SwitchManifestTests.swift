import Foundation
import KilnConfig
import KilnSwitch
import Testing
@testable import KilnManifest

/// The `switch:` section through the loader: ports checked against the NICs, the TAP port turned into a runtime
/// TAP with the box's addresses, and each mistake reported at its line and column.
struct SwitchManifestTests {
    func load(fixture name: String) throws -> ApplianceSpec {
        let url = try #require(Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: "yaml"))
        return try ManifestLoader.load(try ManifestLoaderTests().write(try String(contentsOf: url, encoding: .utf8)))
    }

    func errors(fixture name: String) throws -> [ManifestError] {
        do {
            _ = try load(fixture: name)
            Issue.record("\(name) should not load")
            return []
        } catch let e as ManifestErrors { return e.errors }
    }

    @Test func goodSectionLoads() throws {
        let spec = try load(fixture: "switch-good")
        let sw = try #require(spec.switch)
        #expect(sw.ports.map(\.name) == ["p1", "p2", "up", "span", "sw0"])
        #expect(sw.ports[2].mode == .trunk && sw.ports[2].vlans == [10, 20])
        #expect(sw.mirror == [SwitchSpec.Mirror(sources: ["p1", "p2"], destination: "span")])
        #expect(sw.export?.collector == "192.0.2.10:4739" && sw.export?.interval == 5)
        // The internal port is a runtime TAP the switch attaches to, carrying the box's address.
        #expect(spec.tuntap == [GuestTunTap(name: try InterfaceName("sw0"), mode: .tap, addresses: [try CIDR("10.0.0.1/24")], service: "switch")])
        #expect(spec.modules.contains("tun") && spec.modules.contains("af_packet"))
        let compiled = try sw.compile()
        #expect(compiled.modes == [.access(vlan: 10), .access(vlan: 20), .trunk(allowed: [10, 20], native: nil), .access(vlan: 1), .access(vlan: 10)])
        #expect(compiled.mirrors.map(\.destination) == [3] && compiled.mirrors.map(\.sources) == [[0, 1]])
    }

    /// What the guest reads back is the section the manifest gave.
    @Test func sectionRoundTripsThroughTheGuestJSON() throws {
        let sw = try #require(try load(fixture: "switch-good").switch)
        let decoded = try KilnJSON.decode(SwitchSpec.self, from: Array(try KilnJSON.encode(sw).pretty.utf8))
        #expect(decoded == sw)
    }

    @Test func unknownPortAndAPortWithAddresses() throws {
        let e = try errors(fixture: "switch-unknown-port")
        #expect(e.map(\.description) == [
            "m.yaml:10:15: error: switch.ports[1].name: switch port 'p3' is not a NIC under interfaces (did you mean 'p1'?); an internal port needs type: tap",
            "m.yaml:11:15: error: switch.ports[2].name: switch port 'p2' also has addresses; the switch owns its frames (put the box on the switch with a tap port)",
        ].map { $0.replacingOccurrences(of: "m.yaml", with: e.first?.location.file ?? "") })
    }

    @Test func vlanOutOfRangePointsAtTheVLAN() throws {
        let e = try errors(fixture: "switch-vlan-range")
        #expect(e.count == 1)
        #expect(e.first?.path == "switch.ports[1].vlans[1]")
        #expect(e.first?.message == "VLAN 4095 is outside 1-4094")
        #expect(e.first?.location.line == 10 && e.first?.location.column == 44)
    }

    @Test func mirrorToItself() throws {
        let e = try errors(fixture: "switch-mirror-self")
        #expect(e.count == 1)
        #expect(e.first?.path == "switch.mirror[0].sources[1]")
        #expect(e.first?.message == "'p2' is the destination")
        #expect(e.first?.location.line == 12 && e.first?.location.column == 23, "\(e)")
    }

    @Test func tapPortNameMustBeFree() throws {
        let path = try ManifestLoaderTests().write("""
        apiVersion: kiln/v1
        name: sw
        base: debian-cloud
        interfaces:
          p1: {}
        switch:
          ports:
            - { name: p1 }
            - { name: p1x }
            - { name: p1, type: tap }
        """)
        do { _ = try ManifestLoader.load(path); Issue.record("expected errors") } catch let e as ManifestErrors {
            #expect(Set(e.errors.map(\.message)) == [
                "switch port 'p1x' is not a NIC under interfaces (did you mean 'p1'?); an internal port needs type: tap",
                "interface name 'p1' is already used by interfaces.p1",
                "port 'p1' is listed twice",
            ])
            #expect(e.errors.map(\.location.line) == [9, 10, 10])
        }
    }

    @Test func unknownKeyInTheSection() {
        let e = ManifestErrorTests().decodeError("apiVersion: kiln/v1\nname: r\nbase: debian-cloud\nswitch:\n  ports: [ { name: p1, vlna: 10 } ]\n")
        #expect(e?.description == "m.yaml:5:24: error: switch.ports[0].vlna: unknown key 'vlna' (did you mean 'vlan'?)")
    }
}

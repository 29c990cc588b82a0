import KilnConfig
import Testing
@testable import KilnSwitch

@Suite struct SpecTests {
    func decode(_ json: String) throws -> SwitchSpec { try KilnJSON.decode(SwitchSpec.self, from: Array(json.utf8)) }

    @Test func compilesPortsAndMirrors() throws {
        let spec = try decode("""
        {"vlans":[10,20],"ports":[{"name":"eth1","vlan":10},{"name":"eth2","mode":"trunk","vlans":[10,20],"native":1},
         {"name":"sw0","type":"tap","vlan":20},{"name":"span","vlan":1}],
         "mac":{"limit":100,"perPort":10,"aging":30},"mirror":[{"sources":["eth1","eth2"],"destination":"span"}],
         "export":{"collector":"192.0.2.9:4739","interval":5}}
        """)
        let (modes, mirrors) = try spec.compile()
        #expect(modes == [.access(vlan: 10), .trunk(allowed: [10, 20], native: 1), .access(vlan: 20), .access(vlan: 1)])
        #expect(mirrors.count == 1 && mirrors[0].sources == [0, 1] && mirrors[0].destination == 3)
        #expect(spec.ports[2].type == .tap)
        #expect(Collector("[2001:db8::1]:2055")?.port == 2055)
    }

    @Test(arguments: [
        (#"{"ports":[]}"#, "switch.ports: a switch needs at least one port"),
        (#"{"ports":[{"name":"eth1","vlan":5000}]}"#, "switch.ports[0].vlan: VLAN 5000 is outside 1-4094"),
        (#"{"vlans":[10],"ports":[{"name":"eth1","vlan":20}]}"#, "switch.ports[0].vlan: VLAN 20 is not in switch.vlans [10]"),
        (#"{"ports":[{"name":"eth1","mode":"trunk"}]}"#, "switch.ports[0].vlans: a trunk port needs its VLANs"),
        (#"{"ports":[{"name":"eth1","vlans":[2]}]}"#, "switch.ports[0]: 'vlans' and 'native' belong to trunk ports; add mode: trunk"),
        (#"{"ports":[{"name":"eth1"},{"name":"eth1"}]}"#, "switch.ports[1].name: port 'eth1' is listed twice"),
        (#"{"ports":[{"name":"eth1"}],"mirror":[{"sources":["eth9"],"destination":"eth1"}]}"#,
         "switch.mirror[0].sources[0]: no port named 'eth9'"),
        (#"{"ports":[{"name":"eth1"}],"export":{"collector":"nowhere"}}"#,
         "switch.export.collector: 'nowhere' is not address:port (e.g. 192.0.2.10:4739)"),
    ])
    func rejectsWithThePlace(json: String, message: String) throws {
        #expect(throws: ValueError(message)) { _ = try decode(json).compile() }
    }
}

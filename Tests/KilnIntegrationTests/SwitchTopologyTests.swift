import Foundation
import Testing

/// The switch appliance under QEMU: Kiln's userspace switch in the guest moving frames between hosts on its
/// access ports and the two VLANs of its trunk, and the box's own stack on its internal TAP port. The guest has no
/// kernel bridge and its NICs no addresses, so every host-to-host check that passes went through the switch.
@Suite(.serialized)
struct SwitchTopologyTests {
    @Test func switchTopologyPasses() throws {
        let out = try Kiln.temporaryDirectory("switch")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let junit = out + "/switch.xml"
        let r = try Kiln.run(["test", "Appliances/switch.topology.yaml", "--out", out, "--junit", junit])
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("vm sw1 [") && r.stdout.contains("]: READY"), "\(r.stdout)")
        for check in [
            "same VLAN: a reaches b (VLAN 10 access ports)",
            "same VLAN: b opens a TCP connection to a",
            "same VLAN: 4 MB of TCP from b to a and back",
            "cross VLAN: a (VLAN 10) does not reach c (VLAN 20)",
            "cross VLAN: c (VLAN 20) does not reach b (VLAN 10)",
            "trunk: VLAN 10 of the trunk reaches a",
            "trunk: VLAN 20 of the trunk reaches c",
            "trunk: VLAN 20 of the trunk opens a TCP connection to c",
            "trunk: VLAN 10 of the trunk does not reach c",
            "trunk: VLAN 20 of the trunk does not reach a",
            "the box's own stack answers on VLAN 10 through the TAP port",
            "the box's own stack is not on VLAN 20",
        ] {
            #expect(r.stdout.contains("PASS \(check) ("), "\(check): \(r.stdout)")
        }
        #expect(r.stdout.contains(" 0 failed"), "\(r.stdout)")
        let xml = (try? String(contentsOfFile: junit, encoding: .utf8)) ?? ""
        #expect(xml.contains("failures=\"0\"") && xml.contains("trunk: VLAN 20 of the trunk reaches c"), "\(xml)")
        #expect(Kiln.leftovers(of: r.pid).isEmpty, "\(Kiln.leftovers(of: r.pid))")
    }
}

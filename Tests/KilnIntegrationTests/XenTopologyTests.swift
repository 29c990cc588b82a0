import Foundation
import Testing

/// Xen for real: the router image `kiln test` passed under QEMU, deployed unchanged as a PV guest onto a
/// Kiln-built Xen host running under QEMU (nested: Xen, dom0 and the guest all under TCG here), serving DHCP and
/// NAT through dom0's bridges, then upgraded, rolled back and undefined with nothing left in dom0.
@Suite(.serialized)
struct XenTopologyTests {
    @Test func testedRouterRunsAsAXenGuest() throws {
        let out = try Kiln.temporaryDirectory("xen")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let router = try Kiln.run(["test", "Appliances/router.topology.yaml", "--out", out])
        #expect(router.status == 0, "\(router.stdout)\n\(router.stderr)")
        let r = try Kiln.run(["test", "Appliances/xen.topology.yaml", "--out", out], timeout: 1200)
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("vm xen1 [") && r.stdout.contains("]: READY"), "\(r.stdout)")
        #expect(r.stdout.contains("vm r1 [xen-pv on xen1]: READY"), "\(r.stdout)")
        for check in [
            "r1: event ready → ok",
            "the guest loaded the Xen drivers of its module plan",
            "what runs on the Xen host is the image the router topology tested under QEMU",
            "a LAN client leases an address from the Xen guest through dom0's bridge",
            "the client reaches the WAN server through the guest's NAT",
            "upgrade: the domain restarts with the new config and keeps the old one",
            "rollback: the replaced config runs again",
            "undefine: nothing of the guest is left in dom0",
            "with the guest gone nothing routes",
        ] {
            #expect(r.stdout.contains("PASS \(check) ("), "\(check): \(r.stdout)")
        }
        #expect(r.stdout.contains(" 0 failed"), "\(r.stdout)")
        #expect(Kiln.leftovers(of: r.pid).isEmpty, "\(Kiln.leftovers(of: r.pid))")
    }
}

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
        for check in [
            "the tested router image is deployed unchanged as a Xen guest and reaches READY",
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
        // The same image under both hypervisors: what the Xen deploy printed is what the QEMU test recorded.
        let tested = (try? String(contentsOfFile: out + "/router/tested.json", encoding: .utf8)) ?? ""
        let info = (try? String(contentsOfFile: out + "/router/build.json", encoding: .utf8)) ?? ""
        #expect(!tested.isEmpty && info.contains("initramfs.cpio.zst"))
        #expect(Kiln.leftovers(of: r.pid).isEmpty, "\(Kiln.leftovers(of: r.pid))")
    }
}

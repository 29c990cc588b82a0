import Foundation
import Testing

/// The WAN optimizer pair under QEMU: client — optimizer A — emulated WAN (netem) — optimizer B — server, three
/// VMs built from Appliances/wanopt-a.yaml, wan.yaml and wanopt-b.yaml. Killing and restarting optimizer B is
/// covered on the host (KilnWANOptTests.LabTests) with the same service binary.
@Suite(.serialized)
struct WANOptTopologyTests {
    @Test func wanoptTopologyPasses() throws {
        let out = try Kiln.temporaryDirectory("wanopt")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let junit = out + "/wanopt.xml"
        let r = try Kiln.run(["test", "Appliances/wanopt.topology.yaml", "--out", out, "--junit", junit], timeout: 1200)
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        for vm in ["opta", "wan", "optb"] {
            #expect(r.stdout.contains("vm \(vm) [") , "\(vm): \(r.stdout)")
        }
        for check in [
            "the path forwards end to end",
            "a 2 MiB transfer through the optimizer pair arrives intact",
            "the same bytes again arrive intact (sent as references)",
        ] {
            #expect(r.stdout.contains("PASS \(check) ("), "\(check): \(r.stdout)")
        }
        #expect(r.stdout.contains(" 0 failed"), "\(r.stdout)")
        #expect(Kiln.leftovers(of: r.pid).isEmpty, "\(Kiln.leftovers(of: r.pid))")
    }
}

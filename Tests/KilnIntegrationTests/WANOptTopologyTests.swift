import Foundation
import Testing

/// The WAN optimizer pair under QEMU: client — optimizer A — emulated WAN (netem) — optimizer B — server, three
/// VMs built from Appliances/wanopt-a.yaml, wan.yaml and wanopt-b.yaml. Transfers are checked by SHA-256; A's
/// status (console `wanopt`) shows them optimized, passed through while B's service is killed from its console,
/// and optimized again after B's restart.
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
            "the optimizers' channel is up",
            "a 2 MiB transfer through the optimizer pair arrives intact",
            "it went through the channel",
            "the same bytes again arrive intact",
            "the repeat went through the channel too",
            "optimizer B is killed",
            "with B down, a new connection still arrives intact",
            "it was passed through unoptimized",
            "optimizer B restarts",
            "A reconnects to B",
            "after B's restart a new connection arrives intact",
            "and is optimized again",
        ] {
            #expect(r.stdout.contains("PASS \(check) ("), "\(check): \(r.stdout)")
        }
        #expect(r.stdout.contains(" 0 failed"), "\(r.stdout)")
        #expect(Kiln.leftovers(of: r.pid).isEmpty, "\(Kiln.leftovers(of: r.pid))")
    }
}

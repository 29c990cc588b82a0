import Foundation
import Testing

/// The firewall appliance under QEMU, seen from test hosts on its LAN, WAN and DMZ: every verdict of its
/// ruleset, and a box whose ruleset fails to load staying closed. Serialized: each boots a VM.
@Suite(.serialized)
struct FirewallTopologyTests {
    @Test func firewallTopologyPasses() throws {
        let out = try Kiln.temporaryDirectory("fw")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let junit = out + "/firewall.xml"
        let r = try Kiln.run(["test", "Appliances/firewall.topology.yaml", "--out", out, "--junit", junit])
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("vm fw [") && r.stdout.contains("]: READY"), "\(r.stdout)")
        for check in [
            "LAN reaches the WAN masqueraded, and the reply comes back",
            "allowed: WAN reaches the DMZ DNS server",
            "blocked: the DMZ web server is not reachable directly from the WAN",
            "blocked: WAN cannot open connections into the LAN",
            "reject: ident on the firewall answers with TCP RST",
            "port forward reaches the DMZ server, which sees the client's address",
            "spoofed LAN source and blocklisted source from the WAN are dropped; the genuine source gets through",
        ] {
            #expect(r.stdout.contains("PASS \(check) ("), "\(check): \(r.stdout)")
        }
        #expect(r.stdout.contains(" 0 failed"), "\(r.stdout)")
        let xml = (try? String(contentsOfFile: junit, encoding: .utf8)) ?? ""
        #expect(xml.contains("failures=\"0\"") && xml.contains("reject: ident on the firewall"), "\(xml)")
        #expect(Kiln.leftovers(of: r.pid).isEmpty, "\(Kiln.leftovers(of: r.pid))")
    }

    @Test func brokenRulesetLeavesTheBoxClosed() throws {
        let out = try Kiln.temporaryDirectory("fwclosed")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let dir = Kiln.repo.appendingPathComponent("Tests/KilnIntegrationTests/Fixtures").path
        // The ruleset passes the build's libnftables dry run: the build succeeds and only the guest fails.
        let r = try Kiln.run(["test", dir + "/fail-closed.topology.yaml", "--out", out, "--boot-timeout", "40"])
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("vm fw [") && r.stdout.contains("]: FAILED as expected"), "\(r.stdout)")
        #expect(r.stdout.contains("failed phase: firewall: nftables: Could not process rule: No such file or directory"), "\(r.stdout)")
        #expect(r.stdout.contains("| KILN {\"event\":\"firewall-failed\""), "the console shows firewall-failed: \(r.stdout)")
        #expect(r.stdout.contains("\"state\":\"default-drop\""), "\(r.stdout)")
        for check in ["LAN cannot reach the box", "LAN cannot reach through the box", "WAN cannot reach the box", "the port forward is closed"] {
            #expect(r.stdout.contains("PASS \(check) ("), "\(check): \(r.stdout)")
        }
        #expect(r.stdout.contains(" 0 failed"), "\(r.stdout)")
        #expect(Kiln.leftovers(of: r.pid).isEmpty, "\(Kiln.leftovers(of: r.pid))")
    }
}

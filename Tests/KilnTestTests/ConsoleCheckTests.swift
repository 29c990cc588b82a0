import Foundation
import KilnTest
import Testing

/// `console:` checks (a line typed on a VM's serial console and the text it must print): they run on VMs only,
/// and a check is exactly one kind.
struct ConsoleCheckTests {
    func load(_ check: String) throws -> Topology {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-console-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("t.topology.yaml").path
        try """
            apiVersion: kiln/v1
            name: t
            vms: { a: { appliance: vpn.yaml } }
            hosts: { lan: { addresses: [10.0.0.10/24] } }
            links: [ [lan, a.lan] ]
            checks:
              - \(check)

            """.write(toFile: path, atomically: true, encoding: .utf8)
        return try TopologyLoader.load(path).0
    }

    @Test func onAVM() throws {
        let t = try load("{ on: a, console: status, output: \"latest handshake\", timeout: 5 }")
        #expect(t.checks.first?.console == "status")
        #expect(t.checks.first.map(CheckRunner.name(of:)) == "a: console `status` prints 'latest handshake' → ok")
    }

    @Test func notOnAHost() throws {
        #expect { _ = try self.load("{ on: lan, console: status }") } throws: { "\($0)".contains("event and console checks run on a VM") }
    }

    @Test func oneKindPerCheck() throws {
        #expect { _ = try self.load("{ on: a, console: status, ping: 10.0.0.1 }") } throws: {
            "\($0)".contains("a check needs exactly one of ping, tcp, udp, run, event or console")
        }
    }

    /// A console line may name the event that answers it (`service stop dhcp` → a `service` event).
    @Test func consoleWithAnEventWaitsForThatEvent() throws {
        let t = try load("{ on: a, console: \"service stop dhcp\", event: service, output: \"signal=9\" }")
        #expect(t.checks.first?.console == "service stop dhcp")
        #expect(t.checks.first?.event == "service")
    }
}

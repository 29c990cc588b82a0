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
        #expect { _ = try self.load("{ on: lan, console: status }") } throws: { "\($0)".contains("event, console and line checks run on a VM") }
    }

    @Test func oneKindPerCheck() throws {
        #expect { _ = try self.load("{ on: a, console: status, ping: 10.0.0.1 }") } throws: {
            "\($0)".contains("a check needs exactly one of ping, tcp, udp, run, event, console (with an optional event) or line")
        }
    }

    /// A console line may name the event that answers it (`service stop dhcp` → a `service` event).
    @Test func consoleWithAnEventWaitsForThatEvent() throws {
        let t = try load("{ on: a, console: \"service stop dhcp\", event: service, output: \"signal=9\" }")
        #expect(t.checks.first?.console == "service stop dhcp")
        #expect(t.checks.first?.event == "service")
    }

    /// `line:` waits for a line the VM prints by itself; it is a regular expression, checked when the topology loads.
    @Test func lineIsARegularExpressionOnAVM() throws {
        let t = try load("{ on: a, line: \"handshake [0-9]+ with peer 1\", timeout: 200 }")
        #expect(t.checks.first?.line == "handshake [0-9]+ with peer 1")
        #expect(t.checks.first.map(CheckRunner.name(of:)) == "a: line /handshake [0-9]+ with peer 1/ → ok")
        #expect { _ = try self.load("{ on: a, line: \"handshake (2\" }") } throws: {
            "\($0)".contains("t.topology.yaml:") && "\($0)".contains("'handshake (2' is not a regular expression")
        }
        #expect { _ = try self.load("{ on: lan, line: ready }") } throws: { "\($0)".contains("event, console and line checks run on a VM") }
        #expect { _ = try self.load("{ on: a, line: ready, console: status }") } throws: { "\($0)".contains("a check needs exactly one of") }
    }

    /// The matching a `line:` check does on the console's lines.
    @Test func lineMatchesAnyLineSinceBoot() throws {
        let lines = ["[wg] wg0 handshake 1", "[wg] wg0 handshake 2, 121 s after the previous", "[wg] wg0 handshake 3, 7 s after the previous"]
        #expect(try ConsoleLineMatch(pattern: "handshake [0-9]+, 1[2-9][0-9] s after")
            .first(in: lines) == "[wg] wg0 handshake 2, 121 s after the previous")
        #expect(try ConsoleLineMatch(pattern: "handshake [0-9]+, 2[0-9][0-9] s after").first(in: lines) == nil)
    }
}

/// The re-key topology's `line:` checks load and their patterns tell a re-key from a first handshake.
struct VPNTopologyRekeyFileTests {
    @Test func loads() throws {
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let t = try TopologyLoader.load(repo.appendingPathComponent("Appliances/vpn-rekey.topology.yaml").path).0
        let patterns = t.checks.compactMap(\.line)
        #expect(patterns.count == 4)
        let kiln = try ConsoleLineMatch(pattern: try #require(patterns.first { $0.contains("with peer 1") && $0.contains("after") }))
        let key = "A4MU835hRO0JONje94jtWruZLjKe6iOdZ6MKhLBBCFU="
        #expect(kiln.first(in: ["[vpn] handshake 3 with peer 1 (\(key)) completed, 121 s after the previous"]) != nil)
        #expect(kiln.first(in: ["[vpn] handshake 2 with peer 1 (\(key)) completed, 2 s after the previous",
                                "[vpn] handshake 2 with peer 0 (\(key)) completed, 125 s after the previous"]) == nil)
        let kernel = try ConsoleLineMatch(pattern: try #require(patterns.first { $0.contains("wg0") && $0.contains("after") }))
        #expect(kernel.first(in: ["[wg] wg0 handshake 2, 120 s after the previous"]) != nil)
        #expect(kernel.first(in: ["[wg] wg0 handshake 2, 12 s after the previous", "[wg] wg0 handshake 1"]) == nil)
    }
}

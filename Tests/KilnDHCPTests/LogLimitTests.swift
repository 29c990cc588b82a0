import Foundation
import Glibc
import KilnConfig
import Testing
@testable import KilnDHCP

/// Per-packet log lines are limited, and what was left out is counted and reported.
struct LogLimitTests {
    @Test func aFloodInOneSecondLogsTheLimitThenOneNotice() {
        var limiter = LogRateLimiter(perSecond: 20)
        var out: [String] = []
        for i in 0..<1000 { out += limiter.admit("DISCOVER \(i)", now: 100) }
        #expect(out == (0..<20).map { "DISCOVER \($0)" })
        // The next second: first the notice of what the previous one left out, then the line.
        #expect(limiter.admit("REQUEST", now: 101) == [
            "980 per-packet log lines suppressed in 1 s (limit 20/s; 980 suppressed, 20 logged since start)", "REQUEST",
        ])
        #expect(limiter.flush(now: 102) == [])
        // A flood over several seconds: at most one notice a second, each for the second before.
        var notices: [String] = []
        for second in Int64(200)..<203 { for _ in 0..<25 { notices += limiter.admit("x", now: second).filter { $0 != "x" } } }
        #expect(notices.count == 2 && notices.allSatisfy { $0.hasPrefix("5 per-packet log lines suppressed in 1 s") })
        #expect(limiter.flush(now: 202) == [])
        #expect(limiter.flush(now: 203) == ["5 per-packet log lines suppressed in 1 s (limit 20/s; 995 suppressed, 81 logged since start)"])
        _ = limiter.admit("y", now: 300); for _ in 0..<20 { _ = limiter.admit("z", now: 300) }
        #expect(limiter.flush(now: 300, final: true) == ["1 per-packet log line suppressed in 1 s (limit 20/s; 996 suppressed, 101 logged since start)"])
    }

    /// A LAN host sending 300 DISCOVERs (from 300 MACs) to the real server in a namespace: with the clock held in
    /// one second, 20 lines reach the log and the rest are counted in one notice when the server stops (before,
    /// every packet wrote a line).
    @Test(.enabled(if: canRunInterop), .timeLimit(.minutes(1)))
    func aDiscoverFloodDoesNotFloodTheLog() throws {
        let ns = try NamespacePair(tag: "f", serverAddress: "10.78.0.1/24")
        defer { ns.close() }
        let dir = scratchDir()
        defer { sh("rm -rf '\(dir)'") }
        let spec = DHCPSpec(pool: try IPv4Range("10.78.0.10-10.78.0.250"), router: nil, dns: [], domain: nil, lease: 3600, mtu: nil, routes: [])
        let config = DHCPServerConfig(interfaces: [DHCPInterfaceConfig(name: try InterfaceName(ns.serverIf), address: try CIDR("10.78.0.1/24"),
                                                                       spec: spec, leaseFile: dir + "/leases")])
        let server = NamespacedServer()
        server.start(namespace: ns.server, config: config, clock: { 1_000 })
        usleep(300_000)
        #expect(server.startError == nil, "\(server.startError ?? "")")
        let flood = """
        import socket, struct
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"\(ns.clientIf)")
        s.bind(("0.0.0.0", 68))
        for i in range(300):
            mac = bytes([0x52, 0x54, 0x00, 0x10, i >> 8, i & 0xff])
            p = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 0, 0x1000 + i, 0, 0x8000, bytes(4), bytes(4), bytes(4), bytes(4),
                            mac + bytes(10), bytes(64), bytes(128))
            s.sendto(p + bytes([99, 130, 83, 99, 53, 1, 1, 255]), ("255.255.255.255", 67))
        """
        let run = sh("ip netns exec \(ns.client) python3 -c '\(flood)'")
        #expect(run.status == 0, "\(run.output)")
        usleep(500_000)
        server.stopAndWait()
        let lines = server.log
        let perPacket = lines.filter { $0.contains("DISCOVER from") }
        #expect(perPacket.count == 20, "\(lines.count) lines:\n\(lines.suffix(5).joined(separator: "\n"))")
        // The socket's buffer may drop part of the flood: the notice counts what the server did receive.
        let notice = try #require(lines.first { $0.contains("per-packet log lines suppressed") }, "\(lines.suffix(3))")
        let suppressed = try #require(Int(notice.prefix { $0.isNumber }))
        #expect(suppressed > 0)
        #expect(notice == "\(suppressed) per-packet log lines suppressed in 1 s (limit 20/s; \(suppressed) suppressed, 20 logged since start)")
        #expect(lines.count == 20 + 2, "serving, 20 DISCOVER lines, the notice: \(lines.count) lines")
    }
}

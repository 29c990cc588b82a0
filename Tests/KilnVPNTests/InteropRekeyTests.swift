import Foundation
import Glibc
import KilnSystem
import Testing
@testable import KilnVPN

/// The re-key against wireguard-go with the protocol's own timer: after REKEY_AFTER_TIME (120 s) of a session
/// in use, its initiator makes a new handshake, which completes on both sides while a ping keeps running, and
/// traffic flows on the new session. A suite of its own (its own namespaces and wireguard-go interface), so its
/// two minutes run beside the other interop tests.
@Suite(.enabled(if: toolsAvailable(), "needs root, wireguard-go, wg, iperf3"))
struct InteropRekeyTests {
    /// wireguard-go's latest handshake with Kiln, in seconds since the epoch (0: none).
    func latestHandshake(_ topology: InteropTopology) -> UInt64 {
        let out = run(["ip", "netns", "exec", topology.peer, "wg", "show", topology.wg, "latest-handshakes"]).1
        return out.split(separator: "\n").first.flatMap { $0.split(separator: "\t").last }.flatMap { UInt64($0) } ?? 0
    }

    @Test func kilnAndWireguardGoReKeyAfter120Seconds() throws {
        let topology = try InteropTopology(tag: "r")
        let device = try topology.startKiln()
        defer { device.stop() }
        let first = run(["ip", "netns", "exec", topology.kiln, "ping", "-c", "3", "-i", "0.3", "-W", "2", "10.99.0.2"])
        #expect(first.0 == 0, "\(first.1) \(device.status())")
        usleep(1_500_000)  // wg's latest handshake and Kiln's count settle (Kiln starts a handshake too)
        let before = device.handshakes()[0]
        let peerBefore = latestHandshake(topology)
        #expect(before.count >= 1 && peerBefore > 0, "\(device.status())")

        // 135 s of pings: the session is in use past 120 s. The re-key loses nothing (the old session carries
        // packets until the new one is confirmed); a few may still go missing on a loaded machine.
        let pings = run(["ip", "netns", "exec", topology.kiln, "ping", "-c", "270", "-i", "0.5", "-W", "2", "10.99.0.2"])
        let received = pings.1.split(separator: ",").first { $0.hasSuffix(" received") }.flatMap { Int($0.split(separator: " ")[0]) } ?? 0
        #expect(pings.0 == 0 && received >= 260, "\(pings.1.suffix(300))")

        let after = device.handshakes()[0]
        let peerAfter = latestHandshake(topology)
        #expect(after.count > before.count, "Kiln: \(before) → \(after)")
        // A new handshake, from the re-key timer: not before the session was 120 s old (whole seconds on both sides).
        #expect(after.latest >= before.latest + 119, "Kiln: \(before) → \(after)")
        #expect(peerAfter >= peerBefore + 119, "wireguard-go: \(peerBefore) → \(peerAfter)")
        // Traffic on the new session, both ways.
        let again = run(["ip", "netns", "exec", topology.peer, "ping", "-c", "3", "-i", "0.3", "-W", "2", "10.99.0.1"])
        #expect(again.0 == 0, "\(again.1) \(device.status())")
    }
}

import KilnTestSupport
import Foundation
import Glibc
import KilnConfig
import KilnSystem
import Testing
@testable import KilnVPN

/// Runs a command to completion; returns (status, stdout+stderr).
@discardableResult
func run(_ arguments: [String], input: String? = nil) -> (Int32, String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    let stdin = Pipe()
    if input != nil { process.standardInput = stdin }
    do { try process.run() } catch { return (-1, "\(arguments[0]): \(error)") }
    if let input { stdin.fileHandleForWriting.write(Data(input.utf8)); try? stdin.fileHandleForWriting.close() }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

func toolsAvailable() -> Bool {
    getuid() == 0 && (["/usr/bin/wireguard-go", "/usr/bin/wg", "/usr/bin/iperf3", "/usr/sbin/ip"] as [String]).allSatisfy { FileManager.default.isExecutableFile(atPath: $0) }
}

/// Two namespaces joined by a veth pair: Kiln in `kiln`, wireguard-go in `peer`. `tag` keeps the namespaces,
/// files and wireguard-go's interface (its UAPI socket is shared by all namespaces) apart from another
/// topology's in the same test process.
final class InteropTopology {
    let kiln: String
    let peer: String
    /// wireguard-go's interface.
    let wg: String
    var wireguardGo: Process?
    let kilnKey = X25519.keypair()
    let peerKey = X25519.keypair()
    let psk = randomBytes(32)

    init(tag: String = "") throws {
        kiln = "kvpn-k\(tag)-\(getpid())"
        peer = "kvpn-p\(tag)-\(getpid())"
        wg = "wg\(tag)0"
        for ns in [kiln, peer] {
            guard run(["ip", "netns", "add", ns]).0 == 0 else { throw VPNConfigError(field: "test", message: "ip netns add \(ns)") }
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
        }
        run(["ip", "-n", kiln, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1", "netns", peer])
        run(["ip", "-n", kiln, "addr", "add", "192.0.2.1/24", "dev", "veth0"])
        run(["ip", "-n", peer, "addr", "add", "192.0.2.2/24", "dev", "veth1"])
        run(["ip", "-n", kiln, "link", "set", "veth0", "up"])
        run(["ip", "-n", peer, "link", "set", "veth1", "up"])
        // wireguard-go in the peer namespace, in the foreground so the test owns its pid.
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        p.arguments = ["netns", "exec", peer, "wireguard-go", "-f", wg]
        p.environment = ["WG_PROCESS_FOREGROUND": "1", "LOG_LEVEL": "error", "PATH": "/usr/bin:/usr/sbin:/bin:/sbin"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        wireguardGo = p
        for _ in 0..<50 where run(["ip", "-n", peer, "link", "show", wg]).0 != 0 { usleep(100_000) }
        let keyFile = "/tmp/kvpn\(tag)-\(getpid())-key", pskFile = "/tmp/kvpn\(tag)-\(getpid())-psk"
        FileManager.default.createFile(atPath: keyFile, contents: Data(Base64.encode(peerKey.privateKey).utf8), attributes: [.posixPermissions: 0o600])
        FileManager.default.createFile(atPath: pskFile, contents: Data(Base64.encode(psk).utf8), attributes: [.posixPermissions: 0o600])
        defer { unlink(keyFile); unlink(pskFile) }
        let (status, output) = run(["ip", "netns", "exec", peer, "wg", "set", wg, "listen-port", "51820", "private-key", keyFile,
                                    "peer", Base64.encode(kilnKey.publicKey), "preshared-key", pskFile,
                                    "endpoint", "192.0.2.1:51820", "allowed-ips", "10.99.0.1/32"])
        guard status == 0 else { throw VPNConfigError(field: "test", message: "wg set: \(output)") }
        run(["ip", "-n", peer, "addr", "add", "10.99.0.2/24", "dev", wg])
        run(["ip", "-n", peer, "link", "set", wg, "mtu", "1420", "up"])
    }

    func config() -> VPNConfig {
        VPNConfig(interface: "kvpn0", privateKey: Base64.encode(kilnKey.privateKey), listenPort: 51820,
                  address: [try! CIDR("10.99.0.1/24")],
                  peers: [.init(publicKey: Base64.encode(peerKey.publicKey), presharedKey: Base64.encode(psk),
                                endpoint: "192.0.2.2:51820", allowedIPs: [try! CIDR("10.99.0.2/32")])])
    }

    /// Creates the Kiln device inside the Kiln namespace and brings its interface up.
    func startKiln() throws -> VPNDevice {
        let device = try NetworkNamespace.run(path: "/run/netns/\(kiln)") { try VPNDevice(config: config()) }
        run(["ip", "-n", kiln, "addr", "add", "10.99.0.1/24", "dev", device.interfaceName])
        run(["ip", "-n", kiln, "link", "set", device.interfaceName, "mtu", "1420", "up"])
        try device.start()
        return device
    }

    deinit {
        if let p = wireguardGo, p.isRunning { kill(p.processIdentifier, SIGTERM); p.waitUntilExit() }
        run(["ip", "netns", "del", kiln])
        run(["ip", "netns", "del", peer])
    }
}

@Suite(.serialized, .enabled(if: toolsAvailable(), "needs root, wireguard-go, wg, iperf3"))
struct InteropTests {
    @Test func kilnAndWireguardGoExchangeTraffic() throws {
        let topology = try InteropTopology()
        let device = try topology.startKiln()
        defer { device.stop() }

        let ping1 = run(["ip", "netns", "exec", topology.kiln, "ping", "-c", "3", "-i", "0.3", "-W", "2", "10.99.0.2"])
        #expect(ping1.0 == 0, "\(ping1.1) \(device.status())")
        let ping2 = run(["ip", "netns", "exec", topology.peer, "ping", "-c", "3", "-i", "0.3", "-W", "2", "10.99.0.1"])
        #expect(ping2.0 == 0, "\(ping2.1)")
        #expect(device.handshakeCounts()[0] >= 1)
        let wgShow = run(["ip", "netns", "exec", topology.peer, "wg", "show", topology.wg, "latest-handshakes"]).1
        #expect(!wgShow.hasSuffix("\t0\n"), "\(wgShow)")

        // iperf3 both ways, 2 s each.
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        server.arguments = ["netns", "exec", topology.peer, "iperf3", "-s", "-1", "-B", "10.99.0.2"]
        for reverse in [false, true] {
            server.standardOutput = FileHandle.nullDevice
            let s = Process()
            s.executableURL = server.executableURL
            s.arguments = server.arguments
            s.standardOutput = FileHandle.nullDevice
            s.standardError = FileHandle.nullDevice
            try s.run()
            usleep(500_000)
            let client = run(["ip", "netns", "exec", topology.kiln, "iperf3", "-c", "10.99.0.2", "-t", "2", "-J"] + (reverse ? ["-R"] : []))
            s.waitUntilExit()
            let json = (try? JSONSerialization.jsonObject(with: Data(client.1.utf8))) as? [String: Any]
            let end = json?["end"] as? [String: Any]
            let received = (end?["sum_received"] as? [String: Any])?["bytes"] as? Int ?? 0
            #expect(client.0 == 0 && received > 0, "iperf3 reverse=\(reverse): \(client.1.prefix(400))")
        }

        #expect(device.status().contains("latest handshake"))
    }

    /// A packet sent while the peer is unreachable waits for the handshake (the retry after the link comes back)
    /// instead of being lost, as with wireguard-go and the kernel: a single echo request gets its reply.
    @Test func packetsBeforeTheHandshakeWaitForIt() throws {
        let topology = try InteropTopology()
        run(["ip", "-n", topology.peer, "link", "set", "veth1", "down"])
        let device = try topology.startKiln()
        defer { device.stop() }
        let ping = Process()
        ping.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        ping.arguments = ["netns", "exec", topology.kiln, "ping", "-c", "1", "-W", "15", "10.99.0.2"]
        ping.standardOutput = FileHandle.nullDevice
        ping.standardError = FileHandle.nullDevice
        try ping.run()
        sleep(1)
        #expect(device.handshakeCounts()[0] == 0, "no handshake can have completed with the peer's link down")
        run(["ip", "-n", topology.peer, "link", "set", "veth1", "up"])
        ping.waitUntilExit()
        #expect(ping.terminationStatus == 0, "the echo request sent before the handshake was lost: \(device.status())")
        #expect(device.handshakeCounts()[0] >= 1)
    }

    @Test func hostileDatagramsAreDroppedAndCounted() throws {
        let topology = try InteropTopology()
        let device = try topology.startKiln()
        defer { device.stop() }
        // A low load threshold keeps the flood short: after 16 handshake messages in a second, cookies only.
        device.underLoadThreshold = 16
        #expect(run(["ip", "netns", "exec", topology.kiln, "ping", "-c", "2", "-W", "2", "10.99.0.2"]).0 == 0)

        // Capture one real transport message wireguard-go sends to Kiln, to replay it.
        let capture = try NetworkNamespace.run(path: "/run/netns/\(topology.kiln)") {
            socket(AF_PACKET, Int32(SOCK_DGRAM.rawValue), Int32(UInt16(0x0800).bigEndian))
        }
        defer { close(capture) }
        var timeout = timeval(tv_sec: 3, tv_usec: 0)
        setsockopt(capture, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        #expect(run(["ip", "netns", "exec", topology.peer, "ping", "-c", "1", "-W", "2", "10.99.0.1"]).0 == 0)
        var captured: [UInt8] = []
        var frame = [UInt8](repeating: 0, count: 2048)
        for _ in 0..<50 {
            let n = read(capture, &frame, frame.count)
            if n <= 0 { break }
            let ihl = Int(frame[0] & 0x0F) * 4
            guard frame[9] == 17, n > ihl + 8 + 32, frame[16..<20] == [192, 0, 2, 1], frame[ihl + 8] == 4 else { continue }
            captured = Array(frame[(ihl + 8)..<n])
            break
        }
        #expect(captured.count >= 32)
        let before = device.drops()[.replayed] ?? 0

        try NetworkNamespace.run(path: "/run/netns/\(topology.peer)") {
            let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
            defer { close(fd) }
            var to = sockaddr_in()
            to.sin_family = sa_family_t(AF_INET)
            to.sin_port = UInt16(51820).bigEndian
            to.sin_addr.s_addr = UInt32(0xC000_0201).bigEndian
            func send(_ bytes: [UInt8]) {
                _ = withUnsafePointer(to: &to) { p in
                    p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, bytes, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
                }
            }
            send([1, 0, 0])                                                  // truncated
            send([4, 0, 0, 0] + [UInt8](repeating: 0, count: 20))            // truncated transport
            send([1, 0, 0, 0] + [UInt8](repeating: 7, count: 200))           // wrong initiation length
            send([4, 0, 0, 0] + [UInt8](repeating: 9, count: 9000))          // oversized, unknown index
            send([1, 0, 0, 0] + [UInt8](repeating: 5, count: 144))           // forged initiation (bad mac1)
            send([9, 0, 0, 0] + [UInt8](repeating: 0, count: 60))            // unknown type
            // A handshake flood with valid mac1 (it needs only Kiln's public key): past the load threshold,
            // Kiln answers with cookie replies instead of doing Diffie-Hellman.
            let mac1Key = BLAKE2s.hash(Array("mac1----".utf8), topology.kilnKey.publicKey)
            for i in 0..<100 {
                var m: [UInt8] = [1, 0, 0, 0] + le32(UInt32(i)) + randomBytes(108)
                m += BLAKE2s.mac(key: mac1Key, m) + [UInt8](repeating: 0, count: 16)
                send(m)
            }
            if !captured.isEmpty {
                send(captured)                                               // replayed
                var forged = captured
                forged[forged.count - 1] ^= 1
                send(forged)                                                 // forged tag
            }
        }
        // The datagrams are queued in order; the forged one after the replay is the last to be counted.
        for _ in 0..<100 where (device.drops()[.replayed] ?? 0) == before { usleep(100_000) }
        usleep(200_000)
        let drops = device.drops()
        let total = drops.values.reduce(0, +)
        #expect(total >= 6, "\(drops)")
        #expect((drops[.replayed] ?? 0) == before + 1 && (drops[.decryptFailed] ?? 0) >= 1, "\(drops)")
        #expect((drops[.cookieSent] ?? 0) > 0, "\(drops)")
        #expect((drops[.tooShort] ?? 0) >= 2 && (drops[.badMAC1] ?? 0) >= 1 && (drops[.unknownType] ?? 0) >= 1, "\(drops)")
        // The tunnel still works.
        #expect(run(["ip", "netns", "exec", topology.peer, "ping", "-c", "2", "-W", "2", "10.99.0.1"]).0 == 0)
        #expect(device.status().contains("dropped:"))
    }
}

import KilnTestSupport
import Foundation
import Glibc
import KilnConfig
import KilnSystem
@testable import KilnWANOpt

/// client — optimizer A — wan — optimizer B — server, one network namespace each, joined by veth pairs.
///
/// client 10.1.0.2/24 ─ lan 10.1.0.1 [A] wan 10.9.0.1/30 ─ 10.9.0.2 [wan] 10.9.1.2 ─ 10.9.1.1/30 wan [B] lan
/// 10.2.0.1/24 ─ server 10.2.0.2. The wan namespace forwards through a tbf rate limit each way (the host kernel
/// has no netem, so no delay). The optimizers are the real `kiln-init service wanopt`, started in their
/// namespaces with `ip netns exec`; `close()` kills what it started (by pid) and deletes the namespaces.
final class WANLab {
    static let tools = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Tools").path
    static let kilnInit: String = {
        if let path = ProcessInfo.processInfo.environment["KILN_INIT"] { return path }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/kiln-init").path
    }()

    let tag: String
    let directory: String
    private(set) var namespaces: [String] = []
    private var processes: [String: Process] = [:]
    private var servers: [Process] = []
    let keyFile: String

    init(rate: String = "200mbit") throws {
        tag = "kwo\(getpid())"
        directory = NSTemporaryDirectory() + "kiln-wanopt-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        keyFile = directory + "/psk"
        try writeKey("kiln-wanopt-test-key-0123456789abcdef", to: keyFile)
        do {
            for n in ["c", "a", "w", "b", "s"] { try addNamespace(n) }
            try link("c", "eth0", "10.1.0.2/24", "a", "lan", "10.1.0.1/24")
            try link("a", "wan", "10.9.0.1/30", "w", "w0", "10.9.0.2/30")
            try link("w", "w1", "10.9.1.2/30", "b", "wan", "10.9.1.1/30")
            try link("b", "lan", "10.2.0.1/24", "s", "eth0", "10.2.0.2/24")
            try ip("c", "route add default via 10.1.0.1")
            try ip("a", "route add default via 10.9.0.2")
            try ip("w", "route add 10.1.0.0/24 via 10.9.0.1")
            try ip("w", "route add 10.2.0.0/24 via 10.9.1.1")
            try ip("b", "route add default via 10.9.1.2")
            try ip("s", "route add default via 10.2.0.1")
            for n in ["a", "w", "b"] { try run("ip netns exec \(ns(n)) sysctl -q -w net.ipv4.ip_forward=1") }
            for dev in ["w0", "w1"] { try run("ip netns exec \(ns("w")) tc qdisc add dev \(dev) root tbf rate \(rate) burst 256kb latency 100ms") }
        } catch {
            close()
            throw error
        }
    }

    func ns(_ n: String) -> String { tag + n }

    func writeKey(_ key: String, to path: String) throws {
        try key.write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o600)
    }

    func config(_ side: String, keyFile: String? = nil) -> WANOptConfig {
        let lan = try! InterfaceName("lan")
        if side == "a" {
            return WANOptConfig(name: "branch", lan: [lan], peer: try! SocketAddress("10.9.1.1:7800"), keyFile: keyFile ?? self.keyFile,
                                optimize: [WANOptMatch(destinations: [try! CIDR("10.2.0.0/24")])],
                                bypass: [WANOptMatch(ports: [try! PortRange("22")])],
                                reconnectMaxMs: 1000, statusSocket: directory + "/a.sock",
                                store: WANOptStore(path: directory + "/a-store", capacity: 64 << 20))
        }
        return WANOptConfig(name: "dc", lan: [lan], listen: try! SocketAddress("10.9.1.1:7800"), keyFile: keyFile ?? self.keyFile,
                            optimize: [WANOptMatch(destinations: [try! CIDR("10.1.0.0/24")])], statusSocket: directory + "/b.sock",
                            store: WANOptStore(path: directory + "/b-store", capacity: 64 << 20))
    }

    /// Starts (or restarts) the optimizer of `side` ("a" or "b") and waits until it answers on its status socket.
    func startOptimizer(_ side: String, config: WANOptConfig? = nil) throws {
        let path = directory + "/\(side).json"
        try (try KilnJSON.encode(config ?? self.config(side)).pretty).write(toFile: path, atomically: true, encoding: .utf8)
        let log = directory + "/\(side).log"
        let p = Process()
        // `exec` twice: the pid the test holds is the optimizer's own, so a kill reaches it.
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = ["-c", "exec ip netns exec \(ns(side)) \(WANLab.kilnInit) service wanopt \(path) >> \(log) 2>&1"]
        try p.run()
        processes[side] = p
        let socket = (config ?? self.config(side)).statusSocket
        guard eventually(seconds: 20, { (try? StatusSocket.query(path: socket)) != nil }) else {
            throw TestFailure("optimizer \(side) did not come up; log:\n\(self.log(side))")
        }
    }

    /// SIGKILL, as a crash would.
    func killOptimizer(_ side: String) {
        guard let p = processes.removeValue(forKey: side) else { return }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
    }

    func isRunning(_ side: String) -> Bool { processes[side]?.isRunning ?? false }

    func log(_ side: String) -> String { (try? String(contentsOfFile: directory + "/\(side).log", encoding: .utf8)) ?? "" }

    func status(_ side: String) throws -> JSONValue {
        let text = try StatusSocket.query(path: config(side).statusSocket)
        return try JSONParser.parse(Array(text.utf8))
    }

    /// Starts a checking server in the server namespace (see Tools/tcpcheck.py).
    func startServer(port: Int, gate: String? = nil) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        p.arguments = ["netns", "exec", ns("s"), "python3", "-u", WANLab.tools + "/tcpcheck.py", "serve", String(port)] + (gate.map { [$0] } ?? [])
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        servers.append(p)
        _ = out.fileHandleForReading.availableData  // "listening PORT"
    }

    /// One transfer from the client namespace: `bytes` up, the same back; true when both arrived intact.
    func transfer(port: Int, bytes: Int, seed: Int, timeout: Int = 60) throws -> (ok: Bool, output: String) {
        let r = try sh(["ip", "netns", "exec", ns("c"), "python3", WANLab.tools + "/tcpcheck.py", "send", "10.2.0.2",
                        String(port), String(bytes), String(seed)], timeout: timeout)
        return (r.status == 0, r.output)
    }

    /// The same, started in the background; `wait()` gives the result.
    func transferInBackground(port: Int, bytes: Int, seed: Int) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        p.arguments = ["netns", "exec", ns("c"), "python3", WANLab.tools + "/tcpcheck.py", "send", "10.2.0.2",
                       String(port), String(bytes), String(seed)]
        p.standardOutput = Pipe()
        try p.run()
        servers.append(p)
        return p
    }

    func close() {
        for (_, p) in processes where p.isRunning { kill(p.processIdentifier, SIGTERM) }
        for (_, p) in processes { _ = eventually(seconds: 3) { !p.isRunning }; if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        processes.removeAll()
        for p in servers where p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() }
        servers.removeAll()
        for n in namespaces.reversed() { _ = try? sh(["ip", "netns", "del", n], timeout: 10) }
        namespaces.removeAll()
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func addNamespace(_ n: String) throws {
        _ = try? sh(["ip", "netns", "del", ns(n)], timeout: 10)
        try run("ip netns add \(ns(n))")
        namespaces.append(ns(n))
        try run("ip -n \(ns(n)) link set lo up")
        try run("ip netns exec \(ns(n)) sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1")
    }

    private func link(_ n1: String, _ d1: String, _ a1: String, _ n2: String, _ d2: String, _ a2: String) throws {
        try run("ip link add \(d1) netns \(ns(n1)) type veth peer name \(d2) netns \(ns(n2))")
        try run("ip -n \(ns(n1)) addr add \(a1) dev \(d1) && ip -n \(ns(n1)) link set \(d1) up")
        try run("ip -n \(ns(n2)) addr add \(a2) dev \(d2) && ip -n \(ns(n2)) link set \(d2) up")
    }

    private func ip(_ n: String, _ command: String) throws { try run("ip -n \(ns(n)) \(command)") }
}


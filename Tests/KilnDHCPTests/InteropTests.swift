import Foundation
import KilnConfig
import Testing
@testable import KilnDHCP

/// Runs a shell command, returning its exit status and combined output.
@discardableResult
func sh(_ command: String) -> (status: Int32, output: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/bin/sh")
    p.arguments = ["-c", command + " 2>&1"]
    let pipe = Pipe()
    p.standardOutput = pipe
    do { try p.run() } catch { return (-1, "\(error)") }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// A pair of network namespaces joined by a veth, removed on `close()` (deleting a namespace deletes its veth end).
final class NamespacePair {
    let server: String, client: String, serverIf: String, clientIf: String
    init(tag: String, serverAddress: String) throws {
        let id = "\(getpid() % 100000)\(tag)"
        server = "kds\(id)"; client = "kdc\(id)"; serverIf = "kds\(id)"; clientIf = "kdc\(id)"
        let setup = """
        set -e
        ip netns add \(server); ip netns add \(client)
        ip link add \(serverIf) netns \(server) type veth peer name \(clientIf) netns \(client)
        ip -n \(server) addr add \(serverAddress) dev \(serverIf)
        ip -n \(server) link set lo up; ip -n \(client) link set lo up
        ip -n \(server) link set \(serverIf) up; ip -n \(client) link set \(clientIf) up
        """
        let r = sh(setup)
        guard r.status == 0 else { close(); throw NamespaceError(message: r.output) }
    }
    func close() { sh("ip netns del \(server) 2>/dev/null; ip netns del \(client) 2>/dev/null") }
    struct NamespaceError: Error { var message: String }
}

/// A DHCPServer on a thread that has entered a network namespace (setns affects only the calling thread).
final class NamespacedServer: @unchecked Sendable {
    private let lock = NSLock()
    private var stop = false
    private var finished = false
    var lines: [String] = []
    var startError: String?

    func start(namespace: String, config: DHCPServerConfig, clock: (@Sendable () -> Int64)? = nil) {
        let thread = Thread { [self] in
            let fd = open("/var/run/netns/\(namespace)", O_RDONLY)
            if fd < 0 || enterNetworkNamespace(fd) != 0 { record(error: "setns \(namespace) failed"); return }
            Glibc.close(fd)
            do {
                let server = try DHCPServer(config: config, clock: clock) { [self] line in lock.lock(); lines.append(line); lock.unlock() }
                server.serve { [self] in lock.lock(); defer { lock.unlock() }; return stop }
            } catch { record(error: "\(error)") }
            lock.lock(); finished = true; lock.unlock()
        }
        thread.start()
    }
    private func record(error: String) { lock.lock(); startError = error; finished = true; lock.unlock() }

    /// Asks the loop to stop and waits (bounded) for it to save and exit.
    func stopAndWait() {
        lock.lock(); stop = true; lock.unlock()
        for _ in 0..<50 {
            lock.lock(); let done = finished; lock.unlock()
            if done { return }
            usleep(100_000)
        }
    }
    var log: [String] { lock.lock(); defer { lock.unlock() }; return lines }
}

let canRunInterop = getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/busybox")

@Suite(.serialized) struct InteropTests {
    @Test(.enabled(if: canRunInterop), .timeLimit(.minutes(1)))
    func busyboxUdhcpcGetsALeaseWithOurOptions() throws {
        let ns = try NamespacePair(tag: "a", serverAddress: "10.77.0.1/24")
        defer { ns.close() }
        let dir = scratchDir()
        defer { sh("rm -rf '\(dir)'") }
        let spec = DHCPSpec(pool: try IPv4Range("10.77.0.100-10.77.0.120"), router: v4("10.77.0.1"), dns: [v4("10.77.0.1"), v4("10.77.0.53")],
                            domain: "branch.example", lease: 3600, mtu: 1400,
                            routes: [DHCPRouteSpec(to: try CIDR("10.99.0.0/16"), via: v4("10.77.0.1"))])
        let config = DHCPServerConfig(interfaces: [DHCPInterfaceConfig(name: try InterfaceName(ns.serverIf), address: try CIDR("10.77.0.1/24"),
                                                                       spec: spec, leaseFile: dir + "/leases/\(ns.serverIf).leases")])
        let script = dir + "/udhcpc.sh"
        try "#!/bin/sh\n[ \"$1\" = bound ] && env > \(dir)/bound.env\nexit 0\n".write(toFile: script, atomically: true, encoding: .utf8)
        sh("chmod +x \(script)")
        let mac = sh("cat /sys/class/net/\(ns.clientIf)/address 2>/dev/null || ip netns exec \(ns.client) cat /sys/class/net/\(ns.clientIf)/address").output
            .trimmingCharacters(in: .whitespacesAndNewlines)

        let server = NamespacedServer()
        server.start(namespace: ns.server, config: config)
        usleep(300_000)
        #expect(server.startError == nil, "\(server.startError ?? "")")
        let udhcpc = "ip netns exec \(ns.client) timeout 20 busybox udhcpc -i \(ns.clientIf) -n -q -f -t 6 -T 1 -s \(script) -O staticroutes -O mtu"
        let run = sh(udhcpc)
        server.stopAndWait()
        #expect(run.status == 0, "\(run.output)\n\(server.log.joined(separator: "\n"))")
        let env = parseEnv((try? String(contentsOfFile: dir + "/bound.env", encoding: .utf8)) ?? "")
        #expect(env["ip"].map { $0.hasPrefix("10.77.0.1") && $0 != "10.77.0.1" } == true, "\(env)")
        #expect(env["subnet"] == "255.255.255.0")
        #expect(env["router"] == "10.77.0.1")
        #expect(env["dns"] == "10.77.0.1 10.77.0.53")
        #expect(env["domain"] == "branch.example")
        #expect(env["lease"] == "3600")
        #expect(env["mtu"] == "1400")
        #expect(env["staticroutes"] == "10.99.0.0/16 10.77.0.1 0.0.0.0/0 10.77.0.1")
        #expect(env["serverid"] == "10.77.0.1")
        let log = server.log.joined(separator: "\n")
        #expect(log.contains("OFFER") && log.contains("ACK"), "\(log)")

        // The lease was saved; a restarted server gives the same client the same address.
        let saved = (try? String(contentsOfFile: config.interfaces[0].leaseFile, encoding: .utf8)) ?? ""
        #expect(saved.contains(mac) && saved.contains(env["ip"] ?? "-"), "\(saved)")
        let again = NamespacedServer()
        again.start(namespace: ns.server, config: config)
        usleep(300_000)
        sh("rm -f \(dir)/bound.env")
        let second = sh(udhcpc)
        again.stopAndWait()
        let env2 = parseEnv((try? String(contentsOfFile: dir + "/bound.env", encoding: .utf8)) ?? "")
        #expect(second.status == 0 && env2["ip"] == env["ip"], "\(second.output)\n\(again.log.joined(separator: "\n"))")
        #expect(again.log.contains { $0.contains("loaded 1 leases") })
    }
}

func parseEnv(_ text: String) -> [String: String] {
    var out: [String: String] = [:]
    for line in text.split(separator: "\n") {
        guard let eq = line.firstIndex(of: "=") else { continue }
        out[String(line[..<eq])] = String(line[line.index(after: eq)...])
    }
    return out
}

/// setns(fd, CLONE_NEWNET) for the calling thread. Glibc's Swift module hides setns (_GNU_SOURCE), so it is looked up.
func enterNetworkNamespace(_ fd: Int32) -> Int32 {
    typealias SetNS = @convention(c) (Int32, Int32) -> Int32
    guard let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "setns") else { return -1 }
    return unsafeBitCast(sym, to: SetNS.self)(fd, 0x4000_0000)
}

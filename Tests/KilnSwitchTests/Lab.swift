import KilnTestSupport
import Foundation
import KilnSystem
@testable import KilnSwitch

/// A switch in a network namespace of its own with one host namespace per port, joined by veth pairs.
///
/// Host `h1` lives in namespace `<tag>h1` with interface `eth0` (MAC 02:00:00:00:00:01 for h1, ...); its peer in the
/// switch namespace is called `h1` and is the switch port of that name. Everything is named after the test
/// process's pid, and `close()` removes it all (deleting a namespace deletes its veth ends).
final class Lab {
    struct Host {
        var name: String
        var port: SwitchSpec.Port
        /// IPv4 address with prefix, or nil for a port with no stack (a trunk or SPAN peer).
        var address: String?
    }

    static let toolDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Tools").path

    let tag: String
    let switchNamespace: String
    private(set) var namespaces: [String] = []
    private(set) var sw: Switch?
    private var captures: [Capture] = []

    /// `hosts` with `access(vlan)` etc. given as ports; `extraPorts` are switch ports with no host (TAP ports).
    /// With `start` false only the namespaces and links are made, for a test that runs a switch of its own.
    /// Suites that may run at the same time as NetworkTests give a `prefix` of their own.
    init(hosts: [Host], extraPorts: [SwitchSpec.Port] = [], mac: SwitchSpec.MAC? = nil,
         mirror: [SwitchSpec.Mirror]? = nil, export: SwitchSpec.Export? = nil, start: Bool = true,
         prefix: String = "ksw") throws {
        tag = "\(prefix)\(getpid())"
        switchNamespace = tag + "sw"
        do {
            try addNamespace(switchNamespace)
            for (i, host) in hosts.enumerated() {
                let ns = tag + host.name
                try addNamespace(ns)
                let mac = String(format: "02:00:00:00:00:%02x", i + 1)
                try run("ip link add \(host.name) netns \(switchNamespace) type veth peer name eth0 netns \(ns)")
                try run("ip -n \(ns) link set eth0 address \(mac) up")
                if let address = host.address { try run("ip -n \(ns) addr add \(address) dev eth0") }
            }
            guard start else { return }
            let spec = SwitchSpec(ports: hosts.map(\.port) + extraPorts, mac: mac, mirror: mirror, export: export)
            let opened = try NetworkNamespace.run(path: "/run/netns/\(switchNamespace)") { try Switch(spec: spec) }
            sw = opened
            try opened.start()
        } catch {
            close()
            throw error
        }
    }

    /// The MAC of the n-th host (1-based), as the table holds it.
    static func mac(_ n: Int) -> UInt64 { 0x02_00_00_00_00_00 | UInt64(n) }

    /// Runs `command` in the namespace of host `host` (or of the switch for "sw").
    @discardableResult
    func exec(_ host: String, _ command: String, timeout: Int = 30) throws -> (status: Int32, output: String) {
        try sh(["ip", "netns", "exec", namespace(host), "bash", "-c", command], timeout: timeout)
    }

    func namespace(_ host: String) -> String { host == "sw" ? switchNamespace : tag + host }

    /// True when `count` pings from `from` to `address` all come back (each waits at most 2 s).
    func ping(_ from: String, _ address: String, count: Int = 2, size: Int = 56) throws -> Bool {
        try exec(from, "ping -n -q -c \(count) -i 0.2 -W 2 -s \(size) \(address)").status == 0
    }

    /// Sends raw frames from host `from` (see Tools/frames.py).
    func send(from: String, dst: String, src: String, vid: UInt16? = nil, etherType: String = "0x88b5", count: Int) throws {
        let r = try exec(from, "python3 \(Self.toolDirectory)/frames.py eth0 \(dst) \(src) \(vid.map(String.init) ?? "-") \(etherType) \(count)")
        guard r.status == 0 else { throw TestFailure("frames.py on \(from) exited \(r.status): \(r.output)") }
    }

    /// Starts tshark on `interface` in the namespace of `host`; it stops after `seconds` or `packets`.
    func capture(_ host: String, interface: String = "eth0", filter: String, fields: [String], seconds: Int = 8,
                 packets: Int? = nil) throws -> Capture {
        let c = try Capture(namespace: namespace(host), interface: interface, filter: filter, fields: fields,
                            seconds: seconds, packets: packets)
        captures.append(c)
        return c
    }

    /// Stops the switch, ends captures, removes the namespaces. Safe to call twice.
    func close() {
        sw?.stop()
        sw = nil
        for c in captures { c.kill() }
        captures.removeAll()
        for ns in namespaces.reversed() { _ = try? sh(["ip", "netns", "del", ns], timeout: 10) }
        namespaces.removeAll()
    }

    private func addNamespace(_ ns: String) throws {
        _ = try? sh(["ip", "netns", "del", ns], timeout: 10)  // left over by a crashed run with the same pid
        try run("ip netns add \(ns)")
        namespaces.append(ns)
        try run("ip -n \(ns) link set lo up")
        // No IPv6: router solicitations and DAD would put unrelated frames and MACs on the switch.
        try run("ip netns exec \(ns) sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1")
    }
}

/// One tshark process capturing in a namespace, with its output in files.
final class Capture {
    private let process = Process()
    private let directory: String
    /// The pcap file tshark writes when started with no fields.
    var file: String { directory + "/capture.pcap" }

    init(namespace: String, interface: String, filter: String, fields: [String], seconds: Int, packets: Int?) throws {
        directory = try temporaryDirectory("capture")
        var argv = ["-k", "2", String(seconds + 20), "ip", "netns", "exec", namespace, "tshark", "-l", "-n", "-i", interface,
                    "-f", filter, "-a", "duration:\(seconds)"]
        if let packets { argv += ["-c", String(packets)] }
        if fields.isEmpty {
            argv += ["-w", directory + "/capture.pcap"]
        } else {
            argv += ["-T", "fields", "-E", "separator=|", "-E", "aggregator=,"]
            for f in fields { argv += ["-e", f] }
        }
        process.executableURL = URL(fileURLWithPath: "/usr/bin/timeout")
        process.arguments = argv
        FileManager.default.createFile(atPath: directory + "/out", contents: nil)
        FileManager.default.createFile(atPath: directory + "/err", contents: nil)
        process.standardOutput = FileHandle(forWritingAtPath: directory + "/out")
        process.standardError = FileHandle(forWritingAtPath: directory + "/err")
        try process.run()
        // tshark says "Capturing on 'eth0'" once its filter is attached; only then is traffic worth sending.
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline, process.isRunning {
            if let err = try? String(contentsOfFile: directory + "/err", encoding: .utf8), err.contains("Capturing on") {
                // dumpcap reports before its ring is fully in place; frames in the next moment can be missed.
                usleep(500_000)
                return
            }
            usleep(50_000)
        }
        let err = (try? String(contentsOfFile: directory + "/err", encoding: .utf8)) ?? ""
        kill()
        throw TestFailure("tshark did not start capturing on \(interface) in \(namespace): \(err)")
    }

    /// Waits for tshark to stop (its duration or packet count) and returns its output lines.
    func lines() -> [String] {
        process.waitUntilExit()
        let out = (try? String(contentsOfFile: directory + "/out", encoding: .utf8)) ?? ""
        return out.split(separator: "\n").map(String.init)
    }

    /// What tshark printed on stderr.
    var errors: String { (try? String(contentsOfFile: directory + "/err", encoding: .utf8)) ?? "" }

    func kill() {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        try? FileManager.default.removeItem(atPath: directory)
    }

    deinit { if process.isRunning { process.terminate() } }
}

import CKilnShims
import Foundation
import KilnSystem
@testable import KilnTest

/// Root, iproute2 and the kernel's AF_PACKET: what the real-network tests need.
let canMakeNamespaces = getuid() == 0 && toolExists("ip")

func toolExists(_ name: String) -> Bool {
    ["/usr/bin/", "/usr/sbin/", "/bin/", "/sbin/"].contains { FileManager.default.isExecutableFile(atPath: $0 + name) }
}

/// Network namespaces made for one test (`kvt<random>-<role>`), deleted by `close()` even when the test fails.
final class TestNet {
    let prefix = "kvt\(UInt32.random(in: 0...0xffff_ff))-"
    private(set) var namespaces: [String] = []

    func name(_ role: String) -> String { prefix + role }

    /// `ip netns add` with lo up; IPv6 off so hosts send nothing the test did not ask for.
    @discardableResult
    func add(_ role: String) throws -> String {
        let ns = name(role)
        try HostCommand.check(["ip", "netns", "add", ns])
        namespaces.append(ns)
        try ip(ns, "link", "set", "lo", "up")
        try HostCommand.check(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"])
        return ns
    }

    /// A veth pair `a`@`nsA` ↔ `b`@`nsB`, both up.
    func veth(_ nsA: String, _ a: String, _ nsB: String, _ b: String) throws {
        try ip(nsA, "link", "add", a, "type", "veth", "peer", "name", b, "netns", nsB)
        try ip(nsA, "link", "set", a, "up")
        try ip(nsB, "link", "set", b, "up")
    }

    func ip(_ ns: String, _ args: String...) throws { try HostCommand.check(["ip", "-n", ns] + args) }

    func close() {
        for ns in namespaces.reversed() { _ = try? HostCommand.run(["ip", "netns", "del", ns]) }
        namespaces = []
    }

    deinit { close() }
}

/// Runs `body` on a fresh thread inside `/run/netns/<namespace>`; sockets and TAP fds it opens stay in that
/// namespace after it returns, while the caller's thread never moves.
func inNamespace<T>(_ namespace: String, _ body: @escaping @Sendable () throws -> T) throws -> T {
    try NetworkNamespace.run(path: "/run/netns/\(namespace)", body)
}

/// The local-experimental EtherType (IEEE 802 §9.2.2) the tests' frames carry, so other traffic is ignored.
let testEtherType: UInt16 = 0x88b5

/// An Ethernet frame of `testEtherType`, optionally with an in-band 802.1Q tag.
func testFrame(src: UInt8, vlan: UInt16?, payload: String) -> [UInt8] {
    var f: [UInt8] = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, src]
    if let vlan { f += [0x81, 0x00, UInt8(vlan >> 8), UInt8(vlan & 0xff)] }
    f += [UInt8(testEtherType >> 8), UInt8(testEtherType & 0xff)] + Array(payload.utf8)
    while f.count < (vlan == nil ? 60 : 64) { f.append(0) }
    return f
}

/// A received test frame: its payload text, and its 802.1Q VID (nil when it arrived untagged).
struct SeenFrame: Equatable, CustomStringConvertible {
    var payload: String
    var vlan: UInt16?
    var description: String { "\(payload)\(vlan.map { "@vlan\($0)" } ?? "")" }

    /// Parses a frame whose tag is in-band or given from packet metadata; nil unless it is a test frame.
    init?(_ bytes: [UInt8], metadataVLAN: UInt16? = nil) {
        var offset = 12, vlan = metadataVLAN
        if bytes.count >= 18, bytes[12] == 0x81, bytes[13] == 0 {
            vlan = UInt16(bytes[14] & 0x0f) << 8 | UInt16(bytes[15]); offset = 16
        }
        guard bytes.count >= offset + 2, UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1]) == testEtherType else { return nil }
        payload = String(decoding: bytes[(offset + 2)...].prefix { $0 != 0 }, as: UTF8.self)
        self.vlan = vlan
    }
    init(_ payload: String, vlan: UInt16? = nil) { self.payload = payload; self.vlan = vlan }
}

/// An AF_PACKET socket on one interface of a namespace: a host's view of its link, tags read from metadata.
final class RawPort {
    let fd: Int32

    init(namespace: String, interface: String) throws {
        fd = try inNamespace(namespace) { try PacketSocket.open(interface, relay: false) }
    }

    func send(_ frame: [UInt8]) throws {
        guard Glibc.send(fd, frame, frame.count, 0) == frame.count else { throw TestError.environment("send: \(errno)") }
    }

    /// Test frames that arrive (not those sent here) within `seconds`.
    func receive(for seconds: Double) -> [SeenFrame] {
        var seen: [SeenFrame] = []
        var buffer = [UInt8](repeating: 0, count: 2048), control = [UInt8](repeating: 0, count: 128)
        var address = [UInt8](repeating: 0, count: PacketSocket.addressLength)
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 50) > 0 else { continue }
            let (n, controlLength) = buffer.withUnsafeMutableBytes { b in
                control.withUnsafeMutableBytes { c in
                    address.withUnsafeMutableBytes { a in
                        var iov = iovec(iov_base: b.baseAddress, iov_len: b.count)
                        return withUnsafeMutablePointer(to: &iov) { iovp in
                            var m = msghdr(msg_name: a.baseAddress, msg_namelen: socklen_t(a.count),
                                           msg_iov: iovp, msg_iovlen: 1, msg_control: c.baseAddress, msg_controllen: c.count, msg_flags: 0)
                            let n = recvmsg(fd, &m, Int32(MSG_DONTWAIT))
                            return (n, Int(m.msg_controllen))
                        }
                    }
                }
            }
            guard n > 0, address[PacketSocket.packetTypeOffset] != PacketSocket.outgoing else { continue }
            let tag = control.withUnsafeBytes { VLANTrunk.auxdataTag(UnsafeRawBufferPointer(rebasing: $0.prefix(controlLength))) }
            if let frame = SeenFrame(Array(buffer.prefix(n)), metadataVLAN: tag.map { $0.tci & 0x0fff }) { seen.append(frame) }
        }
        return seen
    }

    deinit { Glibc.close(fd) }
}

/// `tshark` capturing in a namespace in the background, its fields read when it stops.
final class Capture {
    private let pid: pid_t
    private let output: FileDescriptor
    private var finished = false

    init(namespace: String, interface: String, fields: [String], filter: String, seconds: Int) throws {
        let out = try FileDescriptor.pipe(), errors = try FileDescriptor.pipe()
        let devNull = try FileDescriptor.open("/dev/null", .readOnly)
        pid = try ChildProcess.spawn(["ip", "netns", "exec", namespace, "tshark", "-n", "-l", "-i", interface,
                                      "-a", "duration:\(seconds)", "-Y", filter, "-T", "fields"]
                                         + fields.flatMap { ["-e", $0] } + ["-E", "separator=,"],
                                     stdin: devNull.rawValue, stdout: out.write.rawValue, stderr: errors.write.rawValue)
        try out.write.close()
        try errors.write.close()
        output = out.read
        // Wait until it captures: tshark says so on standard error.
        var said = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline, !String(decoding: said, as: UTF8.self).contains("Capturing on") {
            var p = pollfd(fd: errors.read.rawValue, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 100) > 0 else { continue }
            let n = buffer.withUnsafeMutableBytes { Glibc.read(errors.read.rawValue, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            said += buffer[0..<n]
        }
        usleep(300_000)
    }

    /// Waits for the capture to end and returns one line of comma-separated fields per frame.
    func lines() -> [String] {
        var data = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 16_384)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(output.rawValue, $0.baseAddress, $0.count) }
            if n > 0 { data += buffer[0..<n] } else if n < 0 && errno == EINTR { continue } else { break }
        }
        _ = try? ChildProcess.wait(pid)
        finished = true
        return String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    deinit {
        guard !finished else { return }
        kill(pid, SIGTERM)
        _ = try? ChildProcess.wait(pid)
    }
}

/// Names of this process's threads (`/proc/self/task/*/comm`).
func threadNames() -> [String] {
    let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
    return tasks.compactMap { try? String(contentsOfFile: "/proc/self/task/\($0)/comm", encoding: .utf8) }
        .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
}

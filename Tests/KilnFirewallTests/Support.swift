import Glibc
import KilnConfig
import KilnSystem
@testable import KilnFirewall

/// The Golden directory next to this file (tests run from the source tree).
let goldenDirectory: String = {
    let file = "\(#filePath)"
    return String(file[..<(file.lastIndex(of: "/") ?? file.endIndex)]) + "/Golden"
}()

func readFile(_ path: String) throws -> String { try readTextFile(path) }

/// Writes `text` to `path` atomically (temp file + rename).
func writeFile(_ path: String, _ text: String) throws {
    let temp = path + ".tmp"
    let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw ValueError("open \(temp): \(String(cString: strerror(errno)))") }
    var bytes = Array(text.utf8)[...]
    while !bytes.isEmpty {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if n < 0 { if errno == EINTR { continue }; close(fd); throw ValueError("write \(temp)") }
        bytes = bytes.dropFirst(n)
    }
    close(fd)
    guard rename(temp, path) == 0 else { throw ValueError("rename \(temp)") }
}

/// Decodes a spec from JSON text (the same Decodable path the YAML loader takes).
func decodeSpec(_ json: String) throws -> FirewallSpec {
    try KilnJSON.decode(FirewallSpec.self, from: Array(json.utf8))
}

/// The `DecodingError` thrown for `json`, rendered as `path: message`.
func decodingFailure(_ json: String) -> String? {
    do { _ = try decodeSpec(json); return nil } catch let error as DecodingError {
        switch error {
        case let .dataCorrupted(c), let .typeMismatch(_, c), let .valueNotFound(_, c), let .keyNotFound(_, c):
            return "firewall." + describePath(c.codingPath) + ": " + c.debugDescription
        @unknown default: return "\(error)"
        }
    } catch { return "\(error)" }
}

/// Runs a command (PATH lookup), waits at most `timeout` seconds, returns status and combined output.
@discardableResult
func sh(_ argv: [String], timeout: Int = 30) throws -> (status: Int32, output: String) {
    var fds: [Int32] = [0, 0]
    guard pipe(&fds) == 0 else { throw ValueError("pipe failed") }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
    posix_spawn_file_actions_adddup2(&actions, fds[1], 2)
    posix_spawn_file_actions_addclose(&actions, fds[0])
    let wrapped = ["timeout", "-k", "2", String(timeout)] + argv
    var cargs = wrapped.map { strdup($0) } + [nil]
    defer { for p in cargs { free(p) } }
    var pid: pid_t = 0
    let rc = posix_spawnp(&pid, "timeout", &actions, nil, &cargs, environ)
    close(fds[1])
    guard rc == 0 else { close(fds[0]); throw ValueError("spawn \(argv[0]): \(rc)") }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = buf.withUnsafeMutableBytes { read(fds[0], $0.baseAddress, $0.count) }
        if n < 0, errno == EINTR { continue }
        if n <= 0 { break }
        out += buf[0..<n]
    }
    close(fds[0])
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0, errno == EINTR {}
    let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    return (code, String(decoding: out, as: UTF8.self))
}

/// Runs `body` on a fresh thread that has joined network namespace `name` (from `ip netns add`), so the
/// test's own threads never change namespace. Sockets made in `body` stay in that namespace.
func inNamespace<T>(_ name: String, _ body: @escaping () throws -> T) throws -> T {
    try NetworkNamespace.run(path: "/var/run/netns/\(name)", body)
}

/// Network namespaces created for one test and deleted by `destroy()` (call it in `defer`).
final class NamespaceLab {
    let prefix: String
    private(set) var names: [String] = []
    init(_ tag: String) { prefix = "kfw\(getpid() % 100000)\(tag)" }

    func add(_ role: String) throws -> String {
        let name = prefix + role
        _ = try? sh(["ip", "netns", "del", name])
        let r = try sh(["ip", "netns", "add", name])
        guard r.status == 0 else { throw ValueError("ip netns add \(name): \(r.output)") }
        names.append(name)
        _ = try sh(["ip", "-n", name, "link", "set", "lo", "up"])
        return name
    }

    /// `ip -n ns …`, failing on a non-zero status.
    func ip(_ ns: String, _ args: String) throws {
        let r = try sh(["ip", "-n", ns] + args.split(separator: " ").map(String.init))
        guard r.status == 0 else { throw ValueError("ip -n \(ns) \(args): \(r.output)") }
    }

    /// A veth pair: `aName` in `a`, `bName` in `b`, both up.
    func link(_ a: String, _ aName: String, _ b: String, _ bName: String) throws {
        let r = try sh(["ip", "link", "add", "kfwtmp\(getpid() % 100000)", "netns", a, "type", "veth", "peer", "name", bName, "netns", b])
        guard r.status == 0 else { throw ValueError("veth: \(r.output)") }
        try ip(a, "link set kfwtmp\(getpid() % 100000) name \(aName)")
        try ip(a, "link set \(aName) up")
        try ip(b, "link set \(bName) up")
    }

    func destroy() { for n in names.reversed() { _ = try? sh(["ip", "netns", "del", n]) } }
}

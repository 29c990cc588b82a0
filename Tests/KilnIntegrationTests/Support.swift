import Foundation
import Testing

/// Runs the kiln CLI built by Scripts/build, as a user would.
enum Kiln {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// KILN_BIN from Scripts/test; tests that need it say so in their failure rather than passing silently.
    static var bin: String? { ProcessInfo.processInfo.environment["KILN_BIN"] }

    struct Run {
        var status: Int32
        var stdout: String
        var stderr: String
        var pid: Int32
    }

    /// Runs kiln with `args`; `unprivileged` runs it as nobody (uid and gid 65534, no groups) with HOME unset.
    static func run(_ args: [String], timeout: Double = 600, environment: [String: String] = [:], unprivileged: Bool = false) throws -> Run {
        guard let bin else { throw Missing() }
        let p = Process()
        if unprivileged {
            p.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
            p.arguments = ["--reuid=65534", "--regid=65534", "--clear-groups", bin + "/kiln"] + args
        } else {
            p.executableURL = URL(fileURLWithPath: bin + "/kiln")
            p.arguments = args
        }
        p.currentDirectoryURL = repo
        var env = ProcessInfo.processInfo.environment
        env.merge(environment) { $1 }
        if unprivileged { env["HOME"] = "/nonexistent"; env["XDG_CACHE_HOME"] = nil }
        p.environment = env
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let pid = p.processIdentifier
        // Read both pipes on threads so a chatty child never blocks on a full pipe.
        let outBox = DataBox(), errBox = DataBox()
        let group = DispatchGroup()
        for (pipe, box) in [(out, outBox), (err, errBox)] {
            group.enter()
            DispatchQueue.global().async { box.data = pipe.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        }
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { usleep(50_000) }
        if p.isRunning { p.interrupt(); sleep(3); if p.isRunning { p.terminate() } }
        p.waitUntilExit()
        group.wait()
        return Run(status: p.terminationStatus, stdout: String(decoding: outBox.data, as: UTF8.self),
                   stderr: String(decoding: errBox.data, as: UTF8.self), pid: pid)
    }

    struct Missing: Error, CustomStringConvertible {
        var description: String { "KILN_BIN is not set: run the integration tests through Scripts/test" }
    }

    static func temporaryDirectory(_ name: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-it-\(name)-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Namespaces and processes a kiln run with this pid would have left behind.
    static func leftovers(of pid: Int32) -> [String] {
        var found: [String] = []
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/run/netns")) ?? []
        found += names.filter { $0.hasPrefix("kiln\(pid)-") }.map { "namespace \($0)" }
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] where Int32(entry) != nil {
            guard let data = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline") else { continue }
            let cmdline = String(decoding: data.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)
            if cmdline.contains("kiln\(pid)-") || cmdline.contains("kiln-\(pid)-") { found.append("process \(entry): \(cmdline)") }
        }
        return found
    }
}

final class DataBox: @unchecked Sendable { var data = Data() }

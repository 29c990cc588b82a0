import Foundation

/// Runs a host tool (virsh, xl) to completion under a deadline and collects its output.
///
/// The child gets its own process group so a stuck `virsh` over ssh is killed with everything it started.
struct HostTool {
    struct Output { var status: Int32; var stdout: String; var stderr: String }

    /// `input`: a file whose bytes become the tool's standard input (default: none).
    static func run(_ argv: [String], timeout: Double = 120, input: String? = nil) throws -> Output {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = argv
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        if let input {
            guard let handle = FileHandle(forReadingAtPath: input) else { throw DeployError.unreadable(path: input) }
            process.standardInput = handle
        } else {
            process.standardInput = FileHandle.nullDevice
        }
        do { try process.run() } catch {
            throw DeployError.toolMissing(tool: argv.first ?? "", hint: "\(error)")
        }
        let pid = process.processIdentifier
        setpgid(pid, pid)
        let group = DispatchGroup()
        nonisolated(unsafe) var outData = Data(), errData = Data()
        DispatchQueue.global().async(group: group) { outData = out.fileHandleForReading.readDataToEndOfFile() }
        DispatchQueue.global().async(group: group) { errData = err.fileHandleForReading.readDataToEndOfFile() }
        let fired = TimeoutFlag()
        let timer = DispatchWorkItem {
            fired.value = true
            kill(-pid, SIGTERM)
            kill(pid, SIGTERM)
            Thread.sleep(forTimeInterval: 2)
            kill(-pid, SIGKILL)
            kill(pid, SIGKILL)
        }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: timer)
        process.waitUntilExit()
        timer.cancel()
        group.wait()
        if fired.value {
            return Output(status: 124, stdout: String(decoding: outData, as: UTF8.self),
                          stderr: "timed out after \(Int(timeout)) s\n" + String(decoding: errData, as: UTF8.self))
        }
        return Output(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                      stderr: String(decoding: errData, as: UTF8.self))
    }

    /// Runs and throws `DeployError.command` unless the tool exits 0.
    @discardableResult
    static func check(_ argv: [String], timeout: Double = 120) throws -> String {
        let r = try run(argv, timeout: timeout)
        guard r.status == 0 else { throw DeployError.command(argv: argv, status: r.status, stderr: r.stderr) }
        return r.stdout
    }
}

private final class TimeoutFlag: @unchecked Sendable { var value = false }

import Foundation
import KilnSystem

/// A short-lived host tool run to completion (`ip`, `bridge`, a check's command) with a deadline.
public struct HostCommand {
    public struct Failure: Error, CustomStringConvertible {
        public var command: String
        public var status: Int32
        public var output: String
        public var description: String { "`\(command)` exited \(status): \(output.trimmingCharacters(in: .whitespacesAndNewlines))" }
    }

    public struct Result: Sendable {
        public var status: Int32
        public var output: String
        public var timedOut: Bool
    }

    /// Runs argv (PATH lookup) in its own session, returning status and combined output; the whole process
    /// group is killed at the deadline. Started with posix_spawn and reaped with waitpid by this thread, so
    /// no other thread or run loop has to make progress for it to finish.
    public static func run(_ argv: [String], timeout: Double = 30, stdin: String? = nil) throws -> Result {
        let output = try FileDescriptor.pipe()
        let input = stdin == nil ? nil : try FileDescriptor.pipe()
        let devNull = try FileDescriptor.open("/dev/null", .readOnly)
        let pid = try ChildProcess.spawn(argv, stdin: input?.read.rawValue ?? devNull.rawValue,
                                         stdout: output.write.rawValue, stderr: output.write.rawValue, newSession: true)
        try output.write.close()
        if let input, let stdin {
            try input.read.close()
            // Small inputs only (a check's script): a pipe holds 64 KiB.
            try? input.write.writeAll(Array(stdin.utf8))
            try input.write.close()
        }
        _ = fcntl(output.read.rawValue, F_SETFL, fcntl(output.read.rawValue, F_GETFL) | O_NONBLOCK)
        let deadline = Date().addingTimeInterval(timeout)
        var collected = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 16_384)
        var timedOut = false
        var status: TerminationStatus?
        var open = true
        while status == nil {
            if open {
                var p = pollfd(fd: output.read.rawValue, events: Int16(POLLIN), revents: 0)
                _ = poll(&p, 1, 20)
                while true {
                    let n = buffer.withUnsafeMutableBytes { Glibc.read(output.read.rawValue, $0.baseAddress, $0.count) }
                    if n > 0 { collected += buffer[0..<n]; continue }
                    if n == 0 { open = false }
                    if n < 0 && errno == EINTR { continue }
                    break
                }
            } else {
                usleep(5_000)
            }
            status = try ChildProcess.tryWait(pid)
            if status == nil && Date() > deadline {
                timedOut = true
                kill(-pid, SIGKILL)
                kill(pid, SIGKILL)
                status = try ChildProcess.wait(pid)
            }
        }
        // What the child wrote before it ended (a background grandchild holding the pipe is not waited for).
        while open {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(output.read.rawValue, $0.baseAddress, $0.count) }
            if n > 0 { collected += buffer[0..<n] } else if n < 0 && errno == EINTR { continue } else { break }
        }
        let code: Int32
        switch status {
        case let .exited(value): code = value
        case let .signaled(signal): code = 128 + signal
        case nil: code = -1
        }
        return Result(status: code, output: String(decoding: collected, as: UTF8.self), timedOut: timedOut)
    }

    /// Runs argv and throws with its output unless it exits 0.
    @discardableResult
    public static func check(_ argv: [String], timeout: Double = 30) throws -> String {
        let r = try run(argv, timeout: timeout)
        guard r.status == 0, !r.timedOut else {
            throw Failure(command: argv.joined(separator: " "), status: r.timedOut ? -1 : r.status, output: r.timedOut ? "timed out" : r.output)
        }
        return r.output
    }
}

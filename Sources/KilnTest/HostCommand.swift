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
    /// group is killed at the deadline.
    public static func run(_ argv: [String], timeout: Double = 30, stdin: String? = nil) throws -> Result {
        let r = try ToolRun.run(argv, timeout: timeout, stdin: stdin.map { Array($0.utf8) }, mergeOutput: true)
        return Result(status: r.exitCode, output: String(decoding: r.stdout, as: UTF8.self), timedOut: r.timedOut)
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

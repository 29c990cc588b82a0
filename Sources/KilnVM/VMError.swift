#if canImport(Glibc)
import Glibc
#endif
import KilnSystem

/// Everything KilnVM can fail with: each case names the process, file or VM it concerns and says what happened.
public enum VMError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A system call failed: operation, subject (path, program, pid) and errno.
    case system(operation: String, subject: String, errno: Int32)
    /// `posix_spawn` could not start `program` (not found, not executable, …).
    case spawnFailed(program: String, errno: Int32)
    /// A process did not finish within its deadline.
    case timedOut(what: String, seconds: Double)
    /// A VM did not reach READY; the report names the phase and carries the console tail.
    case bootFailed(BootReport)
    /// A QMP conversation failed (socket, greeting, reply).
    case qmp(socket: String, message: String)
    /// A command could not be built from its settings (e.g. more NICs than free PCI slots).
    case invalidCommand(String)
    /// The VM was asked to do something in the wrong state (start twice, send before start).
    case invalidState(vm: String, message: String)

    public var description: String {
        switch self {
        case let .system(operation, subject, code):
            return "\(operation) \(subject): \(errnoText(code))"
        case let .spawnFailed(program, code):
            return "cannot start \(program): \(errnoText(code))"
        case let .timedOut(what, seconds):
            return "\(what) did not finish within \(formatSeconds(seconds))"
        case let .bootFailed(report):
            return report.failureSummary
        case let .qmp(socket, message):
            return "QMP \(socket): \(message)"
        case let .invalidCommand(message):
            return "invalid QEMU command: \(message)"
        case let .invalidState(vm, message):
            return "VM \(vm): \(message)"
        }
    }

    /// The current `errno` as a `.system` error.
    static func lastErrno(_ operation: String, _ subject: String) -> VMError {
        .system(operation: operation, subject: subject, errno: errno)
    }
}

/// `strerror` text for an errno value.
func errnoText(_ code: Int32) -> String { Errno.message(for: code) }

/// Seconds with up to three decimals and no trailing zeros: `2`, `0.5`, `12.345`.
func formatSeconds(_ seconds: Double) -> String {
    let millis = (seconds * 1000).rounded()
    let whole = Int(millis) / 1000
    var frac = Int(millis) % 1000
    if frac == 0 { return "\(whole) s" }
    var digits = 3
    while frac % 10 == 0 { frac /= 10; digits -= 1 }
    let fracText = String(frac)
    return "\(whole).\(String(repeating: "0", count: digits - fracText.count))\(fracText) s"
}

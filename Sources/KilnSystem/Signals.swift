import CKilnShims
import Glibc

/// A set of signal numbers (`sigset_t`).
public struct SignalSet: Sendable {
    var raw = sigset_t()

    /// A set holding `signals`.
    public init(_ signals: [Int32] = []) {
        sigemptyset(&raw)
        for signal in signals { sigaddset(&raw, signal) }
    }

    /// Every signal.
    public static var all: SignalSet {
        var set = SignalSet()
        sigfillset(&set.raw)
        return set
    }

    /// True when `signal` is in the set.
    public func contains(_ signal: Int32) -> Bool {
        var copy = raw
        return sigismember(&copy, signal) == 1
    }
}

/// Signal masks and dispositions of the calling thread / process.
public enum Signals {
    /// Blocks `set` for the calling thread (threads started afterwards inherit the mask).
    public static func block(_ set: SignalSet) throws(Errno) {
        try change(SIG_BLOCK, set)
    }

    /// Unblocks `set` for the calling thread.
    public static func unblock(_ set: SignalSet) throws(Errno) {
        try change(SIG_UNBLOCK, set)
    }

    /// Ignores `signal` process-wide (SIG_IGN); children started by `ChildProcess.spawn` get the default back.
    public static func ignore(_ signal: Int32) {
        Glibc.signal(signal, SIG_IGN)
    }

    private static func change(_ how: Int32, _ set: SignalSet) throws(Errno) {
        var mask = set.raw
        let result = pthread_sigmask(how, &mask, nil)
        if result != 0 { throw Errno(result, operation: "pthread_sigmask") }
    }
}

/// Owner of a signalfd(2): blocked signals become readable records, so a PID 1 handles SIGCHLD and SIGTERM in
/// an ordinary loop instead of in an async-signal handler. Block the signals first (`Signals.block`).
public final class SignalDescriptor {
    /// The descriptor, for poll(2).
    public let fd: FileDescriptor

    /// Creates a signalfd for `set` (close-on-exec; non-blocking when asked, for poll loops).
    public init(_ set: SignalSet, nonBlocking: Bool = false) throws(Errno) {
        var mask = set.raw
        fd = FileDescriptor(adopting: try shimCall("signalfd") { kiln_signalfd(&mask, nonBlocking ? 1 : 0) })
    }

    /// Reads the next pending signal number; nil when non-blocking and none is pending.
    public func next() throws(Errno) -> Int32? {
        // struct signalfd_siginfo: 128 bytes, ssi_signo (uint32) first.
        var info = [UInt32](repeating: 0, count: 32)
        let n = info.withUnsafeMutableBytes { Glibc.read(fd.rawValue, $0.baseAddress, $0.count) }
        if n == 128 { return Int32(bitPattern: info[0]) }
        if n == -1 && errno == EAGAIN { return nil }
        if n == -1 && errno == EINTR { return try next() }
        throw Errno(n == -1 ? errno : EIO, operation: "read signalfd")
    }
}

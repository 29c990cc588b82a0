import CKilnShims
import Glibc

/// How a child ended, decoded from a wait(2) status.
public enum TerminationStatus: Equatable, Sendable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32)

    /// Decodes a raw wait status (WIFEXITED / WTERMSIG). Stopped children are not reported (no WUNTRACED).
    public init(waitStatus status: Int32) {
        let signal = status & 0x7f
        self = signal == 0 ? .exited((status >> 8) & 0xff) : .signaled(signal)
    }

    /// True for `exited(0)`.
    public var isSuccess: Bool { self == .exited(0) }

    public var description: String {
        switch self {
        case .exited(let code): "exited with status \(code)"
        case .signaled(let signal): "killed by signal \(signal)"
        }
    }
}

/// Starting and reaping child processes with posix_spawn(2) and waitpid(2).
///
/// The caller owns the returned pid: a supervisor waits for it (or reaps it in `reapAll`) and kills it by pid.
public enum ChildProcess {
    /// Starts `arguments[0]` (searched in PATH when it has no slash) and returns its pid.
    ///
    /// The child gets `stdin`/`stdout`/`stderr` dup'ed onto 0/1/2 (nil: inherit), an empty signal mask and
    /// default signal dispositions (a PID 1 blocks and ignores signals that its children must not inherit),
    /// and with `newSession` its own session and process group (setsid), so it can be signalled as a group.
    /// `processGroup` instead puts it in a process group (0: a new one led by the child; N: join group N).
    /// `descriptors` maps further child descriptors (3, 4, …) to the caller's, e.g. a readiness pipe.
    public static func spawn(
        _ arguments: [String], environment: [String]? = nil,
        stdin: Int32? = nil, stdout: Int32? = nil, stderr: Int32? = nil,
        descriptors: [(target: Int32, source: Int32)] = [],
        newSession: Bool = false, processGroup: pid_t? = nil
    ) throws(Errno) -> pid_t {
        guard let program = arguments.first else { throw Errno(EINVAL, operation: "spawn", subject: "(empty argv)") }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (source, target) in [(stdin, Int32(0)), (stdout, 1), (stderr, 2)] {
            if let source { posix_spawn_file_actions_adddup2(&actions, source, target) }
        }
        for (target, source) in descriptors { posix_spawn_file_actions_adddup2(&actions, source, target) }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        posix_spawnattr_setsigmask(&attributes, &emptyMask)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        if let processGroup { posix_spawnattr_setpgroup(&attributes, processGroup) }
        // POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK, POSIX_SPAWN_SETPGROUP, and POSIX_SPAWN_SETSID (a GNU
        // flag Swift does not import).
        let flags: Int32 = 0x04 | 0x08 | (processGroup != nil ? 0x02 : 0) | (newSession ? 0x80 : 0)
        posix_spawnattr_setflags(&attributes, Int16(flags))

        let argv = CStringArray(arguments)
        let envp = environment.map(CStringArray.init)
        var pid: pid_t = 0
        let result = argv.withPointers { argvPointer in
            func run(_ envPointer: UnsafePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
                program.contains("/")
                    ? posix_spawn(&pid, program, &actions, &attributes, argvPointer, envPointer)
                    : posix_spawnp(&pid, program, &actions, &attributes, argvPointer, envPointer)
            }
            if let envp { return envp.withPointers { run($0) } }
            return run(environ)
        }
        if result != 0 { throw Errno(result, operation: "spawn", subject: program) }
        return pid
    }

    /// Runs `body` in a forked child instead of a new program: the code is already in memory, so nothing is
    /// loaded, relocated or initialised again (under TCG an exec of a Swift binary costs a few hundred ms). Only
    /// for a single-threaded caller (fork copies the calling thread alone). The child gets the same set-up as
    /// `spawn` — descriptors dup'ed onto 0/1/2 and `descriptors`' targets, every other descriptor closed, an empty
    /// signal mask, default dispositions, optionally its own session, `environment` entries ("NAME=value") set —
    /// and exits with `body`'s status.
    public static func fork(
        stdin: Int32? = nil, stdout: Int32? = nil, stderr: Int32? = nil,
        descriptors: [(target: Int32, source: Int32)] = [], environment: [String] = [],
        newSession: Bool = false, _ body: () -> Int32
    ) throws(Errno) -> pid_t {
        let pid = Glibc.fork()
        if pid < 0 { throw Errno(errno, operation: "fork", subject: "service") }
        if pid > 0 { return pid }

        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        sigprocmask(SIG_SETMASK, &emptyMask, nil)
        for signal in 1..<Int32(65) where signal != SIGKILL && signal != SIGSTOP { Glibc.signal(signal, SIG_DFL) }
        if newSession { setsid() }
        var wanted: [(target: Int32, source: Int32)] = []
        for (source, target) in [(stdin, Int32(0)), (stdout, 1), (stderr, 2)] {
            if let source { wanted.append((target, source)) }
        }
        wanted += descriptors
        // Sources may sit on targets: move every source above the highest target before placing them.
        let highest = wanted.map(\.target).max() ?? 2
        let lifted = wanted.map { ($0.target, fcntl($0.source, F_DUPFD, highest + 1)) }
        for (target, source) in lifted { dup2(source, target) }
        _ = kiln_close_from(UInt32(highest + 1))
        for entry in environment {
            guard let equals = entry.firstIndex(of: "=") else { continue }
            setenv(String(entry[..<equals]), String(entry[entry.index(after: equals)...]), 1)
        }
        _exit(body())
    }

    /// Waits for one child to end (blocking; EINTR retried).
    public static func wait(_ pid: pid_t) throws(Errno) -> TerminationStatus {
        var status: Int32 = 0
        try systemCall("waitpid", "\(pid)") { waitpid(pid, &status, 0) }
        return TerminationStatus(waitStatus: status)
    }

    /// Checks one child without blocking: nil while it still runs.
    public static func tryWait(_ pid: pid_t) throws(Errno) -> TerminationStatus? {
        var status: Int32 = 0
        let result = try systemCall("waitpid", "\(pid)") { waitpid(pid, &status, WNOHANG) }
        return result == 0 ? nil : TerminationStatus(waitStatus: status)
    }

    /// Reaps every child that has ended, without blocking (`wait4(-1, WNOHANG)` in a loop), as PID 1 must on
    /// each SIGCHLD: one signal may stand for several exits. Returns what was reaped, in order.
    /// `processGroup` limits it to the children in that group (waitpid(-pgid)).
    public static func reapAll(processGroup: pid_t? = nil) -> [(pid: pid_t, status: TerminationStatus)] {
        var reaped: [(pid: pid_t, status: TerminationStatus)] = []
        let target = processGroup.map { -$0 } ?? -1
        while true {
            var status: Int32 = 0
            let pid = waitpid(target, &status, WNOHANG)
            if pid > 0 {
                reaped.append((pid, TerminationStatus(waitStatus: status)))
            } else if pid == -1 && errno == EINTR {
                continue
            } else {
                return reaped  // 0: children still running; -1/ECHILD: none left
            }
        }
    }

    /// kill(2): sends `signal` to `pid` (a negative pid addresses a process group).
    public static func signal(_ pid: pid_t, _ signal: Int32) throws(Errno) {
        try systemCall("kill", "\(pid)") { kill(pid, signal) }
    }
}

/// A short-lived tool run to completion under a deadline: what it printed and how it ended.
public struct ToolRun: Sendable {
    public var status: TerminationStatus
    public var stdout: [UInt8]
    /// Empty when stderr was merged into stdout.
    public var stderr: [UInt8]
    public var timedOut: Bool

    /// The exit code as a shell reports it: the status, or 128 + the signal.
    public var exitCode: Int32 {
        switch status {
        case let .exited(code): code
        case let .signaled(signal): 128 + signal
        }
    }

    /// Runs `arguments` (PATH lookup) in its own session with `stdin` (or /dev/null) as input, collecting its output,
    /// and kills the whole process group at the deadline, or when this process dies (`BoundChildren`). The calling thread does the waiting (poll + waitpid), so
    /// nothing else has to make progress for it to end. Output a background grandchild writes after the tool
    /// ended is not waited for.
    public static func run(_ arguments: [String], timeout: Double, stdin: [UInt8]? = nil,
                           mergeOutput: Bool = false) throws(Errno) -> ToolRun {
        let out = try FileDescriptor.pipe()
        let err = mergeOutput ? nil : try FileDescriptor.pipe()
        let input = stdin == nil ? nil : try FileDescriptor.pipe()
        let devNull = try FileDescriptor.open("/dev/null", .readOnly)
        // Bound to this process: the tool dies with it, even when it is killed with SIGKILL.
        let pid = try BoundChildren.spawn(arguments, descriptors: [input?.read.rawValue ?? devNull.rawValue, out.write.rawValue,
                                                                   (err?.write ?? out.write).rawValue], newSession: true)
        defer { RunRecord.shared.remove(pid) }
        try out.write.close()
        try err?.write.close()
        if let input, let stdin {
            try input.read.close()
            // Small inputs only (a check's script): a pipe holds 64 KiB.
            try? input.write.writeAll(stdin)
            try input.write.close()
        }
        var streams = [(out.read, [UInt8]())] + (err.map { [($0.read, [UInt8]())] } ?? [])
        for (fd, _) in streams { _ = fcntl(fd.rawValue, F_SETFL, fcntl(fd.rawValue, F_GETFL) | O_NONBLOCK) }
        var buffer = [UInt8](repeating: 0, count: 16_384)
        func drain() {
            for i in streams.indices {
                while true {
                    let n = buffer.withUnsafeMutableBytes { Glibc.read(streams[i].0.rawValue, $0.baseAddress, $0.count) }
                    if n > 0 { streams[i].1 += buffer[0..<n]; continue }
                    if n < 0 && errno == EINTR { continue }
                    break
                }
            }
        }
        let deadline = MonotonicClock.nanoseconds() + UInt64(max(0, timeout) * 1e9)
        var timedOut = false
        var status: TerminationStatus?
        while status == nil {
            var polls = streams.map { pollfd(fd: $0.0.rawValue, events: Int16(POLLIN), revents: 0) }
            _ = poll(&polls, nfds_t(polls.count), 20)
            drain()
            status = try ChildProcess.tryWait(pid)
            if status == nil && MonotonicClock.nanoseconds() > deadline {
                timedOut = true
                kill(-pid, SIGKILL)
                kill(pid, SIGKILL)
                status = try ChildProcess.wait(pid)
            }
        }
        drain()
        return ToolRun(status: status ?? .exited(-1), stdout: streams[0].1, stderr: streams.count > 1 ? streams[1].1 : [],
                       timedOut: timedOut)
    }
}

/// A NULL-terminated `char *[]` built from Swift strings, freed at deinit.
final class CStringArray {
    private var pointers: [UnsafeMutablePointer<CChar>?]

    init(_ strings: [String]) {
        pointers = strings.map { strdup($0) } + [nil]
    }

    deinit {
        for pointer in pointers { free(pointer) }
    }

    /// Calls `body` with the `char *const[]`; the array always holds the NULL, so its base address exists.
    func withPointers(_ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> Int32) -> Int32 {
        pointers.withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return EINVAL }
            return body(base)
        }
    }
}

/// Service readiness, the way Kiln's supervisor hears it: the service inherits the write end of a pipe as the
/// descriptor named by `KILN_READY_FD` and writes one line once it serves (sockets bound, config loaded).
public enum Readiness {
    public static let environmentVariable = "KILN_READY_FD"

    /// Tells the supervisor this process is ready; does nothing when not started by one. Call once.
    public static func notify() {
        guard let value = getenv(environmentVariable), let fd = Int32(String(cString: value)), fd > 2 else { return }
        var line: UInt8 = 0x0A
        _ = Glibc.write(fd, &line, 1)
        _ = Glibc.close(fd)
        unsetenv(environmentVariable)
    }
}

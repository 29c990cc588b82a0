import Foundation
import KilnSystem
#if canImport(Glibc)
import Glibc
#endif

/// A child process that is owned, not spawned and forgotten (STYLE §8).
///
/// The child runs in its own session and process group, so `terminate(grace:)` reaches everything it started:
/// SIGTERM to the group, SIGKILL after the grace period. A waiter thread reaps it; reader threads drain its output
/// so it never blocks on a full pipe. `close()` (and `deinit`) never leave a process behind.
public final class ManagedProcess: @unchecked Sendable {
    /// How to start the process.
    public struct Configuration: Sendable {
        /// argv; `arguments[0]` is the program, searched in PATH when it has no slash.
        public var arguments: [String]
        /// The complete environment; nil inherits this process's environment.
        public var environment: [String: String]?
        /// The child's working directory; nil keeps the parent's.
        public var workingDirectory: String?
        /// Run inside this named network namespace (`ip netns exec NAME argv…`; exec keeps the pid).
        public var networkNamespace: String?
        public var standardInput: ProcessInput
        public var standardOutput: ProcessOutput
        public var standardError: ProcessOutput

        public init(
            arguments: [String], environment: [String: String]? = nil, workingDirectory: String? = nil,
            networkNamespace: String? = nil, standardInput: ProcessInput = .null,
            standardOutput: ProcessOutput = .collect, standardError: ProcessOutput = .collect
        ) {
            self.arguments = arguments
            self.environment = environment
            self.workingDirectory = workingDirectory
            self.networkNamespace = networkNamespace
            self.standardInput = standardInput
            self.standardOutput = standardOutput
            self.standardError = standardError
        }

        /// The argv actually spawned (with the namespace prefix when one is set).
        public var spawnArguments: [String] {
            guard let networkNamespace else { return arguments }
            return ["ip", "netns", "exec", networkNamespace] + arguments
        }
    }

    /// How a process ended.
    public enum Termination: Equatable, Sendable, CustomStringConvertible {
        case exited(Int32)
        case signaled(Int32)

        /// Exit status 0.
        public var isSuccess: Bool { self == .exited(0) }

        public var description: String {
            switch self {
            case .exited(let code): return "exit status \(code)"
            case .signaled(let signal): return "killed by signal \(signal)"
            }
        }
    }

    public let configuration: Configuration
    /// The child's pid, which is also its process group and session id.
    public let pid: pid_t
    /// When the child was spawned.
    public let startTime: Deadline

    private let state = ExitState()
    private var readers: [PipeReader] = []
    private var stdout: OutputBuffer?
    private var stderr: OutputBuffer?
    private let inputLock = NSLock()
    private var inputFD: Int32 = -1

    /// Spawns the process now.
    public init(_ configuration: Configuration) throws(VMError) {
        self.configuration = configuration
        let name = configuration.arguments.first ?? "process"
        var parentEnds: [Int32] = []  // parent's ends to keep, closed on failure
        var childEnds: [Int32] = []  // child's ends, closed in the parent after spawn
        defer { childEnds.forEach { _ = Glibc.close($0) } }

        var stdio: [ChildDescriptor] = []
        var pendingReaders: [(fd: Int32, label: String, deliver: @Sendable ([UInt8]) -> Void)] = []
        var collected: [OutputBuffer?] = [nil, nil]
        do {
            switch configuration.standardInput {
            case .null: stdio.append(.open("/dev/null", flags: O_RDONLY, mode: 0))
            case .inherit: stdio.append(.inherit)
            case .file(let path): stdio.append(.open(path, flags: O_RDONLY, mode: 0))
            case .pipe:
                let ends = try makePipe(socketPair: true, subject: name)
                parentEnds.append(ends.write)
                childEnds.append(ends.read)
                stdio.append(.duplicate(ends.read))
                inputFD = ends.write
            }
            for (index, output) in [configuration.standardOutput, configuration.standardError].enumerated() {
                let label = "\(name) \(index == 0 ? "stdout" : "stderr")"
                switch output {
                case .discard: stdio.append(.open("/dev/null", flags: O_WRONLY, mode: 0))
                case .inherit: stdio.append(.inherit)
                case let .file(path, append):
                    let flags = O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC)
                    stdio.append(.open(path, flags: flags, mode: 0o644))
                case .collect(let limit):
                    let ends = try makePipe(socketPair: false, subject: name)
                    parentEnds.append(ends.read)
                    childEnds.append(ends.write)
                    stdio.append(.duplicate(ends.write))
                    let buffer = OutputBuffer(limit: limit)
                    collected[index] = buffer
                    pendingReaders.append((ends.read, label, { buffer.append($0) }))
                case .stream(let handler):
                    let ends = try makePipe(socketPair: false, subject: name)
                    parentEnds.append(ends.read)
                    childEnds.append(ends.write)
                    stdio.append(.duplicate(ends.write))
                    pendingReaders.append((ends.read, label, handler))
                }
            }
            let environment = configuration.environment.map { env in
                env.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
            }
            pid = try Spawner.spawn(
                arguments: configuration.spawnArguments, environment: environment,
                workingDirectory: configuration.workingDirectory, stdio: stdio)
        } catch {
            parentEnds.forEach { _ = Glibc.close($0) }
            throw error
        }
        startTime = .now()
        stdout = collected[0]
        stderr = collected[1]
        readers = pendingReaders.map { PipeReader(fd: $0.fd, name: $0.label, deliver: $0.deliver) }
        let state = self.state
        let pid = self.pid
        let waiter = Thread {
            // Wait without reaping, then reap under the state lock: group signals sent under that lock can never
            // reach a recycled pid.
            var info = siginfo_t()
            while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) == -1 && errno == EINTR {}
            state.finish {
                var status: Int32 = 0
                var result: pid_t
                repeat { result = waitpid(pid, &status, 0) } while result == -1 && errno == EINTR
                return result == pid ? Self.decode(status) : .exited(-1)
            }
        }
        waiter.name = "\(name) reaper"
        waiter.start()
    }

    /// Convenience: spawn `arguments` with collected output.
    public convenience init(_ arguments: [String], networkNamespace: String? = nil) throws(VMError) {
        try self.init(Configuration(arguments: arguments, networkNamespace: networkNamespace))
    }

    deinit { close() }

    /// The termination once the child has been reaped, nil while it runs.
    public var termination: Termination? { state.termination }

    /// True while the child has not been reaped.
    public var isRunning: Bool { state.termination == nil }

    /// Waits until the child has exited and its output pipes are drained, or the deadline passes (nil).
    @discardableResult
    public func wait(deadline: Deadline) -> Termination? {
        guard let termination = state.wait(deadline: deadline) else { return nil }
        for reader in readers { _ = reader.waitUntilDone(deadline: deadline) }
        return termination
    }

    /// `wait(deadline:)` `seconds` from now.
    @discardableResult
    public func wait(timeout seconds: Double) -> Termination? { wait(deadline: .after(seconds: seconds)) }

    /// Waits like `wait(deadline:)`, then terminates the process (and its group) if the deadline passed.
    public func waitOrTerminate(deadline: Deadline, grace: Double = 1) throws(VMError) -> Termination {
        if let termination = wait(deadline: deadline) { return termination }
        _ = terminate(grace: grace)
        throw VMError.timedOut(what: configuration.spawnArguments.joined(separator: " "), seconds: startTime.seconds(until: .now()))
    }

    /// SIGTERM to the process group, SIGKILL to the group after `grace` seconds, then reaps the child.
    ///
    /// Stray group members (a shell's background jobs) are killed even when the leader has already exited.
    /// Returns nil only if the child could not be reaped within 10 s of SIGKILL (stuck in uninterruptible sleep).
    @discardableResult
    public func terminate(grace: Double) -> Termination? {
        let deadline = Deadline.after(seconds: grace)
        if isRunning || !liveGroupMembers().isEmpty {
            signalGroup(SIGTERM)
            _ = state.wait(deadline: deadline)
            // The leader is gone; give the rest of its group the remaining grace to exit on their own.
            while !deadline.hasPassed && !liveGroupMembers().isEmpty { usleep(10_000) }
        }
        signalGroup(SIGKILL)
        // SIGKILL cannot be ignored; the bound only guards against a child stuck in uninterruptible sleep.
        let termination = state.wait(deadline: .after(seconds: 10))
        if termination != nil { RunRecord.shared.remove(pid) }
        for reader in readers { _ = reader.waitUntilDone(deadline: .after(seconds: 1)) }
        return termination
    }

    /// Sends `signal` to the child alone (not its group), if it has not been reaped.
    public func signal(_ signal: Int32) {
        state.whileRunning { _ = kill(pid, signal) }
    }

    /// Terminates (SIGTERM, then SIGKILL after `grace`) if still running, stops the readers and closes stdin.
    public func close(grace: Double = 0.5) {
        terminate(grace: grace)
        readers.forEach { $0.stop() }
        closeInput()
    }

    /// Writes all of `bytes` to the child's stdin (`ProcessInput.pipe` only).
    public func write(_ bytes: [UInt8]) throws(VMError) {
        inputLock.lock()
        defer { inputLock.unlock() }
        let name = configuration.arguments.first ?? "process"
        guard inputFD >= 0 else { throw VMError.system(operation: "write stdin of", subject: name, errno: EBADF) }
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes {
                send(inputFD, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            if written < 0 {
                if errno == EINTR { continue }
                throw VMError.lastErrno("write stdin of", name)
            }
            offset += written
        }
    }

    /// Closes the child's stdin (it reads end of file).
    public func closeInput() {
        inputLock.lock()
        defer { inputLock.unlock() }
        if inputFD >= 0 {
            _ = Glibc.close(inputFD)
            inputFD = -1
        }
    }

    /// Collected standard output (`.collect` only; empty otherwise).
    public var standardOutput: [UInt8] { stdout?.snapshot.bytes ?? [] }
    /// Collected standard error (`.collect` only; empty otherwise).
    public var standardError: [UInt8] { stderr?.snapshot.bytes ?? [] }
    /// Collected standard output as UTF-8 text (invalid bytes replaced).
    public var outputText: String { String(decoding: standardOutput, as: UTF8.self) }
    /// Collected standard error as UTF-8 text (invalid bytes replaced).
    public var errorText: String { String(decoding: standardError, as: UTF8.self) }

    /// Signals the whole process group. After the leader has been reaped its pid may in theory be reused; a live
    /// process with that pid means exactly that, so the group is then left alone.
    private func signalGroup(_ signal: Int32) {
        state.whileRunning { _ = kill(-pid, signal) } orElse: {
            if access("/proc/\(pid)", F_OK) != 0 { _ = kill(-pid, signal) }
        }
    }

    /// Pids of running (not zombie) processes in the child's process group, found by scanning /proc.
    func liveGroupMembers() -> [pid_t] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        return entries.compactMap { entry -> pid_t? in
            guard let member = pid_t(entry),
                  let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")")
            else { return nil }
            // Fields after "(comm)": state, ppid, pgrp, …
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 2, fields[0] != "Z", fields[0] != "X", pid_t(fields[2]) == pid else { return nil }
            return member
        }
    }

    private static func decode(_ status: Int32) -> Termination {
        let signal = status & 0x7f
        return signal == 0 ? .exited((status >> 8) & 0xff) : .signaled(signal)
    }
}

/// The reaped status, shared with the waiter thread (which must not keep the process object alive).
private final class ExitState: @unchecked Sendable {
    private let condition = NSCondition()
    private var value: ManagedProcess.Termination?

    var termination: ManagedProcess.Termination? {
        condition.lock()
        defer { condition.unlock() }
        return value
    }

    func finish(_ reap: () -> ManagedProcess.Termination) {
        condition.lock()
        value = reap()
        condition.broadcast()
        condition.unlock()
    }

    func wait(deadline: Deadline) -> ManagedProcess.Termination? {
        condition.lock()
        defer { condition.unlock() }
        while value == nil {
            let remaining = deadline.remaining
            if remaining <= 0 { return nil }
            _ = condition.wait(until: Date(timeIntervalSinceNow: min(remaining, 1e6)))
        }
        return value
    }

    /// Runs `body` while holding the lock if the child has not been reaped (so its pid cannot be reused meanwhile),
    /// `otherwise` if it has.
    func whileRunning(_ body: () -> Void, orElse otherwise: () -> Void = {}) {
        condition.lock()
        defer { condition.unlock() }
        if value == nil { body() } else { otherwise() }
    }
}

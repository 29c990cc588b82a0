import Foundation
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// One QEMU guest under management: started from a `QEMUCommand` as a `ManagedProcess` (optionally inside a
/// network namespace), its serial console parsed as it arrives, judged only by the guest's READY event, and shut
/// down politely (console `poweroff`, then QMP `quit`, then SIGTERM/SIGKILL). Every deadline is multiplied by
/// `timeoutScale`. Dropping the object kills QEMU.
public final class VirtualMachine: @unchecked Sendable {
    public let name: String
    public let command: QEMUCommand
    /// The named network namespace QEMU runs in (TAP backends live there), nil for the caller's.
    public let networkNamespace: String?
    public let timeoutScale: TimeoutScale
    public let logger: Logger

    private let lock = NSLock()
    private var process: ManagedProcess?
    private var consoleLog: ConsoleLog?
    private var fileTail: FileTail?
    private let observer: (@Sendable (ConsoleSignal) -> Void)?

    /// `onConsole` sees every console line, milestone and event as it arrives (on a reader thread), e.g. to echo
    /// the console live in `kiln boot`.
    public init(
        name: String, command: QEMUCommand, networkNamespace: String? = nil,
        timeoutScale: TimeoutScale = .fromEnvironment(), logger: Logger = Logger(label: "kiln.vm"),
        onConsole: (@Sendable (ConsoleSignal) -> Void)? = nil
    ) {
        self.name = name
        self.command = command
        self.networkNamespace = networkNamespace
        self.timeoutScale = timeoutScale
        self.logger = logger
        self.observer = onConsole
    }

    deinit { stop(grace: 0.2) }

    /// QEMU's pid while it runs (also its process group).
    public var pid: pid_t? { lock.withLock { process?.pid } }

    /// How QEMU ended, nil while it runs or before start.
    public var termination: ManagedProcess.Termination? { lock.withLock { process?.termination } }

    /// The parsed console so far (milestones, events, tail); nil before start.
    public var console: ConsoleEventParser? { lock.withLock { consoleLog?.snapshot } }

    /// Starts QEMU. Throws if the command is invalid or QEMU cannot be spawned.
    public func start() throws(VMError) {
        let argv = try command.arguments()
        lock.lock()
        defer { lock.unlock() }
        guard process == nil else { throw VMError.invalidState(vm: name, message: "already started") }
        let console = ConsoleLog(origin: .now(), tailLimit: 200, observer: observer)
        var configuration = ManagedProcess.Configuration(
            arguments: argv, networkNamespace: networkNamespace, standardInput: .null,
            standardOutput: .discard, standardError: .collect(limit: 64 << 10))
        if case .stdio = command.console {
            configuration.standardInput = .pipe
            configuration.standardOutput = .stream { bytes in
                bytes.isEmpty ? console.end() : console.consume(bytes)
            }
        }
        if let socket = command.qmpSocket { unlink(socket) }
        logger.debug("starting QEMU", metadata: ["vm": "\(name)", "argv": "\(argv.joined(separator: " "))"])
        let started = try ManagedProcess(configuration)
        process = started
        consoleLog = console
        if case .file(let path) = command.console {
            fileTail = FileTail(path: path) { console.consume($0) }
        }
    }

    /// Waits for `KILN {"event":"ready"}`, at most `timeout × timeoutScale` seconds. Throws `.bootFailed` with a
    /// report naming the failed phase, the kernel panic, QEMU's exit or the timeout, plus the console tail.
    public func waitForReady(timeout: Double) throws(VMError) -> BootReport {
        guard let (process, console) = lock.withLock({ self.process.flatMap { p in consoleLog.map { (p, $0) } } }) else {
            throw VMError.invalidState(vm: name, message: "not started")
        }
        let scaled = timeoutScale.scale(timeout)
        let deadline = Deadline.after(seconds: scaled)
        while true {
            let (state, _) = console.wait(deadline: deadline) {
                $0.milestone(BootMilestone.ready) != nil || $0.failedPhase != nil || $0.milestone(BootMilestone.panic) != nil
            }
            if state.milestone(BootMilestone.ready) != nil { return report(.ready, state) }
            if let failed = state.failedPhase {
                throw VMError.bootFailed(report(.phaseFailed(phase: failed.phase ?? "?", error: failed["error"] ?? "no error given"), state))
            }
            if state.milestone(BootMilestone.panic) != nil {
                // Let the panic's own lines (the reason, the call trace) reach the tail before reporting.
                _ = process.wait(timeout: timeoutScale.scale(1))
                let settled = console.snapshot
                let message = settled.tail.first { $0.text.contains("Kernel panic - not syncing") }?.text ?? "Kernel panic"
                throw VMError.bootFailed(report(.kernelPanic(message: Self.panicReason(message)), settled))
            }
            if let termination = process.termination {
                _ = process.wait(timeout: 1)  // drain the console pipe
                let settled = console.snapshot
                if settled.milestone(BootMilestone.ready) != nil { return report(.ready, settled) }
                let stderr = process.errorText.split(separator: "\n").suffix(3).joined(separator: " | ")
                throw VMError.bootFailed(report(.exited(status: termination.description, stderr: stderr), settled))
            }
            if deadline.hasPassed { throw VMError.bootFailed(report(.timedOut(seconds: scaled), console.snapshot)) }
        }
    }

    /// Writes `line` and a newline to the guest's serial console (stdio consoles only).
    public func sendConsoleLine(_ line: String) throws(VMError) {
        guard case .stdio = command.console else {
            throw VMError.invalidState(vm: name, message: "the console is a file; it cannot take input")
        }
        guard let process = lock.withLock({ self.process }) else {
            throw VMError.invalidState(vm: name, message: "not started")
        }
        try process.write(Array((line + "\n").utf8))
    }

    /// Stops the VM politely and returns how QEMU ended: `poweroff` on the console, then QMP `quit`, then
    /// SIGTERM and SIGKILL to QEMU's process group. `grace` (scaled) is the time the guest gets to power off.
    @discardableResult
    public func shutdown(grace: Double = 5) -> ManagedProcess.Termination? {
        guard let process = lock.withLock({ self.process }) else { return nil }
        if process.isRunning, case .stdio = command.console {
            do {
                try sendConsoleLine("poweroff")
                _ = process.wait(timeout: timeoutScale.scale(grace))
            } catch {
                logger.debug("console poweroff failed", metadata: ["vm": "\(name)", "error": "\(error)"])
            }
        }
        if process.isRunning, let socket = command.qmpSocket {
            do {
                try QMPClient.execute("quit", socket: socket, deadline: .after(seconds: timeoutScale.scale(2)))
            } catch {
                logger.debug("QMP quit failed", metadata: ["vm": "\(name)", "error": "\(error)"])
            }
            _ = process.wait(timeout: timeoutScale.scale(2))
        }
        stop(grace: 1)
        return process.termination
    }

    /// Kills QEMU at once (SIGTERM, SIGKILL after `grace`) and releases its resources.
    public func stop(grace: Double = 1) {
        let (process, tail, console) = lock.withLock { (self.process, fileTail, consoleLog) }
        process?.close(grace: grace)
        tail?.stop()
        console?.end()
        if let socket = command.qmpSocket { unlink(socket) }
    }

    /// The report for the console state so far (for `kiln boot` progress or a report after shutdown).
    public func currentReport(outcome: BootOutcome) -> BootReport {
        report(outcome, console ?? ConsoleEventParser())
    }

    private func report(_ outcome: BootOutcome, _ state: ConsoleEventParser) -> BootReport {
        BootReport(
            vm: name, accelerator: command.accelerator.rawValue, outcome: outcome, milestones: state.milestones,
            events: state.events, consoleTail: state.tail)
    }

    /// "Kernel panic - not syncing: VFS: Unable to mount root fs" → "VFS: Unable to mount root fs".
    static func panicReason(_ line: String) -> String {
        guard let range = line.range(of: "not syncing: ") else { return line }
        return String(line[range.upperBound...])
    }
}

/// Follows a file QEMU writes the console to (`ConsoleTarget.file`), polling every 50 ms, until stopped.
final class FileTail: @unchecked Sendable {
    private let stopped = NSCondition()
    private var stopRequested = false
    private var finished = false

    init(path: String, deliver: @escaping @Sendable ([UInt8]) -> Void) {
        let thread = Thread { [self] in run(path: path, deliver: deliver) }
        thread.name = "console tail \(path)"
        thread.start()
    }

    private func shouldStop() -> Bool { stopped.withLock { stopRequested } }

    private func run(path: String, deliver: @Sendable ([UInt8]) -> Void) {
        var fd: Int32 = -1
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            if fd < 0 { fd = open(path, O_RDONLY | O_CLOEXEC) }
            var count = 0
            if fd >= 0 {
                count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if count > 0 { deliver(Array(buffer[0..<count])) }
            }
            if count <= 0 {
                if shouldStop() { break }
                usleep(50_000)
            }
        }
        if fd >= 0 { Glibc.close(fd) }
        stopped.withLock {
            finished = true
            stopped.broadcast()
        }
    }

    /// Reads what is left, then ends the thread (bounded wait).
    func stop() {
        stopped.lock()
        defer { stopped.unlock() }
        stopRequested = true
        let limit = Date(timeIntervalSinceNow: 2)
        while !finished && stopped.wait(until: limit) {}
    }
}

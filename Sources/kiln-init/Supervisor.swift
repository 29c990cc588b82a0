import Glibc
import KilnConfig
import KilnSystem

/// Starts the appliance's services, prefixes their output on the console, restarts them with backoff, and
/// shuts everything down in order. Runs on PID 1's single event loop: signalfd for SIGCHLD/SIGTERM, the
/// services' pipes and the console's input are all polled together, so no threads are needed.
final class Supervisor {
    final class Service {
        let spec: GuestService
        var pid: pid_t = 0
        var output: Int32 = -1
        var pending: [UInt8] = []
        var restarts = 0
        var nextStart: UInt64 = 0
        var running: Bool { pid > 0 }
        init(spec: GuestService) { self.spec = spec }
    }

    private(set) var services: [Service]
    private var stopping = false
    /// Services that ended in failure since the last `settle`, with how.
    private var failures: [String] = []
    static let maxBackoffMs: UInt64 = 30_000

    init(_ specs: [GuestService]) { services = specs.map(Service.init) }

    func startAll() throws {
        for s in services { try start(s) }
    }

    func start(_ s: Service) throws {
        let (readEnd, writeEnd) = try FileDescriptor.pipe()
        let devNull = try FileDescriptor.open("/dev/null", .readOnly)
        let pid = try ChildProcess.spawn(s.spec.argv, environment: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"] + s.spec.env,
                                         stdin: devNull.rawValue, stdout: writeEnd.rawValue, stderr: writeEnd.rawValue, newSession: true)
        s.pid = pid
        s.output = readEnd.release()
        _ = fcntl(s.output, F_SETFL, fcntl(s.output, F_GETFL) | O_NONBLOCK)
        Events.emit("service", [("name", .string(s.spec.name)), ("state", .string("started")), ("pid", .int(Int64(pid)))])
    }

    /// Descriptors the event loop should poll for service output.
    var outputs: [Int32] { services.compactMap { $0.output >= 0 ? $0.output : nil } }

    /// Drains a readable service pipe, writing whole lines with the service's name in front.
    func drain(_ fd: Int32) {
        guard let s = services.first(where: { $0.output == fd }) else { return }
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n > 0 {
                s.pending += buffer[0..<n]
                while let nl = s.pending.firstIndex(of: 0x0A) {
                    Events.line("[\(s.spec.name)] " + String(decoding: s.pending[..<nl], as: UTF8.self))
                    s.pending.removeSubrange(...nl)
                }
                if s.pending.count > 4096 { Events.line("[\(s.spec.name)] " + String(decoding: s.pending, as: UTF8.self)); s.pending = [] }
                continue
            }
            if n == 0 { close(fd); s.output = -1 }
            return
        }
    }

    /// Reaps every exited child (PID 1 also adopts orphans) and schedules restarts.
    func reap() {
        var status: Int32 = 0
        while true {
            let pid = waitpid(-1, &status, WNOHANG)
            if pid <= 0 { return }
            guard let s = services.first(where: { $0.pid == pid }) else { continue }
            s.pid = 0
            let exited = status & 0x7f == 0
            let code = exited ? (status >> 8) & 0xff : -(status & 0x7f)
            let clean = exited && code == 0
            let restart = !stopping && (s.spec.restart == .always || (s.spec.restart == .onFailure && !clean))
            if !clean { failures.append("\(s.spec.name) \(exited ? "exited with status \(code)" : "was killed by signal \(-code)")") }
            let backoff = min(Supervisor.maxBackoffMs, 250 << UInt64(min(s.restarts, 7)))
            Events.emit("service", [("name", .string(s.spec.name)), ("state", .string("exited")),
                                    (exited ? "status" : "signal", .int(Int64(abs(code)))),
                                    ("restart-in-ms", restart ? .int(Int64(backoff)) : .null)])
            if restart {
                s.restarts += 1
                s.nextStart = MonotonicClock.nanoseconds() + backoff * 1_000_000
            }
        }
    }

    /// Watches the services for `ms` after they started: one that fails at once (a bad path, a crash on its
    /// config) fails the boot instead of crash-looping behind a READY. Returns what failed.
    func settle(ms: Int) -> [String] {
        failures = []
        let deadline = MonotonicClock.nanoseconds() + UInt64(ms) * 1_000_000
        while MonotonicClock.nanoseconds() < deadline {
            reap()
            for fd in outputs { drain(fd) }
            usleep(10_000)
        }
        reap()
        return failures
    }

    /// Milliseconds until the next scheduled restart, or -1 when none is due.
    func nextTimeout() -> Int32 {
        let now = MonotonicClock.nanoseconds()
        let due = services.filter { !$0.running && $0.nextStart > 0 }.map(\.nextStart)
        guard let next = due.min() else { return -1 }
        return next <= now ? 0 : Int32(min(UInt64(Int32.max), (next - now) / 1_000_000 + 1))
    }

    func restartDue() {
        let now = MonotonicClock.nanoseconds()
        for s in services where !s.running && s.nextStart > 0 && s.nextStart <= now {
            s.nextStart = 0
            do { try start(s) } catch {
                Events.emit("service", [("name", .string(s.spec.name)), ("state", .string("failed")), ("error", .string("\(error)"))])
                s.restarts += 1
                s.nextStart = now + min(Supervisor.maxBackoffMs, 250 << UInt64(min(s.restarts, 7))) * 1_000_000
            }
        }
    }

    /// SIGTERM to every service, up to `graceMs` for them to exit, then SIGKILL.
    func stopAll(graceMs: Int = 2000) {
        stopping = true
        for s in services where s.running { kill(s.pid, SIGTERM) }
        let deadline = MonotonicClock.nanoseconds() + UInt64(graceMs) * 1_000_000
        while services.contains(where: \.running), MonotonicClock.nanoseconds() < deadline {
            reap()
            usleep(20_000)
        }
        for s in services where s.running { kill(s.pid, SIGKILL) }
        reap()
    }
}

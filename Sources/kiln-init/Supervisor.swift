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
        /// Read end of the readiness pipe until the service reports ready (or ends).
        var readiness: Int32 = -1
        var ready = false
        /// Kiln's own services (`kiln-init service …`): forked rather than exec'ed, and they report readiness;
        /// other programs are given time instead.
        var builtIn: Bool { spec.argv.count >= 3 && spec.argv[0] == "/sbin/kiln-init" && spec.argv[1] == "service" }
        /// Kiln's programs report readiness on `KILN_READY_FD`: its built-in services and its other guest
        /// executables (`/sbin/kiln-vpn`).
        var reportsReady: Bool { builtIn || (spec.argv.first.map { $0.hasPrefix("/sbin/kiln-") } ?? false) }
        var pending: [UInt8] = []
        var restarts = 0
        var nextStart: UInt64 = 0
        /// Stopped from the console (`service stop NAME`): not restarted until `service start NAME`.
        var held = false
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
        let readiness = s.reportsReady ? try FileDescriptor.pipe() : nil
        let devNull = try FileDescriptor.open("/dev/null", .readOnly)
        var environment = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"] + s.spec.env
        if readiness != nil { environment.append("\(Readiness.environmentVariable)=3") }
        let descriptors = readiness.map { [(target: Int32(3), source: $0.write.rawValue)] } ?? []
        let pid: pid_t
        if s.builtIn {
            // Kiln's own services are code already in this process: fork without exec (see ChildProcess.fork).
            let arguments = Array(s.spec.argv.dropFirst(2))
            pid = try ChildProcess.fork(stdin: devNull.rawValue, stdout: writeEnd.rawValue, stderr: writeEnd.rawValue,
                                        descriptors: descriptors, environment: environment, newSession: true) {
                ServiceEntry.run(arguments)
            }
        } else {
            pid = try ChildProcess.spawn(s.spec.argv, environment: environment,
                                         stdin: devNull.rawValue, stdout: writeEnd.rawValue, stderr: writeEnd.rawValue,
                                         descriptors: descriptors, newSession: true)
        }
        s.pid = pid
        s.output = readEnd.release()
        _ = fcntl(s.output, F_SETFL, fcntl(s.output, F_GETFL) | O_NONBLOCK)
        if s.readiness >= 0 { close(s.readiness) }
        s.readiness = readiness?.read.release() ?? -1
        s.ready = false
        if s.readiness >= 0 { _ = fcntl(s.readiness, F_SETFL, fcntl(s.readiness, F_GETFL) | O_NONBLOCK) }
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
            if s.readiness >= 0 { close(s.readiness); s.readiness = -1 }
            let exited = status & 0x7f == 0
            let code = exited ? (status >> 8) & 0xff : -(status & 0x7f)
            let clean = exited && code == 0
            let restart = !stopping && !s.held && (s.spec.restart == .always || (s.spec.restart == .onFailure && !clean))
            if !clean && !s.held { failures.append("\(s.spec.name) \(exited ? "exited with status \(code)" : "was killed by signal \(-code)")") }
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

    /// Waits until every Kiln service has said it is ready (a line on its `KILN_READY_FD` pipe), at most `ms`:
    /// one that ends first (a bad path, a crash on its config) or stays silent fails the boot instead of
    /// crash-looping behind a READY. Other programs count as ready once they have run for `silentMs` without
    /// exiting. Returns what failed.
    func awaitReady(ms: Int, silentMs: Int = 300) -> [String] {
        failures = []
        let start = MonotonicClock.nanoseconds()
        let deadline = start + UInt64(ms) * 1_000_000
        while true {
            for s in services where s.readiness >= 0 {
                var byte: UInt8 = 0
                let n = read(s.readiness, &byte, 1)
                if n > 0 { s.ready = true }
                if n >= 0 { close(s.readiness); s.readiness = -1 }
            }
            reap()
            for fd in outputs { drain(fd) }
            if !failures.isEmpty { return failures }
            // Ended cleanly before saying it was ready (an unclean end is in `failures` already).
            let ended = services.filter { $0.reportsReady && !$0.ready && !$0.running }
            if !ended.isEmpty { return ended.map { "\($0.spec.name) exited before reporting ready" } }
            let now = MonotonicClock.nanoseconds()
            let given = now >= start + UInt64(silentMs) * 1_000_000
            let waiting = services.filter { !$0.ready && ($0.reportsReady || !given) }
            if waiting.isEmpty { return [] }
            if now >= deadline {
                return waiting.map { "\($0.spec.name) did not report ready within \(ms) ms" }
            }
            var polls = services.compactMap { $0.readiness >= 0 ? pollfd(fd: $0.readiness, events: Int16(POLLIN), revents: 0) : nil }
            _ = poll(&polls, nfds_t(polls.count), 10)
        }
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

    /// `service stop NAME` on the console: SIGKILL, as a crash would, and no restart until `start`.
    func hold(_ name: String) -> Bool {
        guard let s = services.first(where: { $0.spec.name == name }) else { return false }
        s.held = true
        s.nextStart = 0
        if s.running { kill(s.pid, SIGKILL) }
        return true
    }

    /// `service start NAME` on the console: starts a held (or ended) service again.
    func release(_ name: String) -> Bool {
        guard let s = services.first(where: { $0.spec.name == name }) else { return false }
        s.held = false
        if !s.running {
            s.nextStart = 0
            do { try start(s) } catch {
                Events.emit("service", [("name", .string(s.spec.name)), ("state", .string("failed")), ("error", .string("\(error)"))])
            }
        }
        return true
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

import Glibc
import Testing
@testable import KilnSystem

@Suite struct ProcessTests {
    @Test func spawnTrueAndFalse() throws {
        #expect(try ChildProcess.wait(ChildProcess.spawn(["/bin/true"])) == .exited(0))
        #expect(try ChildProcess.wait(ChildProcess.spawn(["false"])) == .exited(1))  // found in PATH
    }

    @Test func signaledChildIsReportedAsSuch() throws {
        let pid = try ChildProcess.spawn(["/bin/sh", "-c", "kill -TERM $$"])
        #expect(try ChildProcess.wait(pid) == .signaled(SIGTERM))
    }

    @Test func stdoutGoesToTheGivenDescriptorAndEnvironmentIsPassed() throws {
        let pipe = try FileDescriptor.pipe()
        let pid = try ChildProcess.spawn(
            ["/bin/sh", "-c", "echo \"$GREETING\"; echo to-stderr >&2"], environment: ["GREETING=hello kiln"],
            stdout: pipe.write.rawValue, stderr: pipe.write.rawValue)
        try pipe.write.close()
        let text = String(decoding: try pipe.read.readAll(), as: UTF8.self)
        #expect(try ChildProcess.wait(pid).isSuccess)
        #expect(text == "hello kiln\nto-stderr\n")
    }

    @Test func newSessionMakesTheChildASessionLeader() throws {
        // Field 6 of /proc/PID/stat is the session id; a setsid child leads its own session.
        let script = "set -- $(cat /proc/$$/stat); [ \"$6\" = \"$$\" ]"
        #expect(try ChildProcess.wait(ChildProcess.spawn(["/bin/sh", "-c", script], newSession: true)) == .exited(0))
        #expect(try ChildProcess.wait(ChildProcess.spawn(["/bin/sh", "-c", script])) == .exited(1))
    }

    @Test func missingProgramIsANamedError() {
        #expect(throws: Errno(ENOENT, operation: "spawn", subject: "/nonexistent/kiln-program")) {
            _ = try ChildProcess.spawn(["/nonexistent/kiln-program"])
        }
    }

    @Test func reapAllCollectsEveryEndedChild() throws {
        // A process group keeps this test from reaping children that other tests are waiting for.
        let leader = try ChildProcess.spawn(["/bin/sleep", "0.2"], processGroup: 0)
        var pids: Set<pid_t> = [leader]
        for _ in 0..<3 { pids.insert(try ChildProcess.spawn(["/bin/true"], processGroup: leader)) }
        var reaped: [pid_t: TerminationStatus] = [:]
        let deadline = MonotonicClock.nanoseconds() + 5_000_000_000
        while reaped.count < pids.count && MonotonicClock.nanoseconds() < deadline {
            for (pid, status) in ChildProcess.reapAll(processGroup: leader) { reaped[pid] = status }
            usleep(10_000)
        }
        #expect(Set(reaped.keys) == pids)
        #expect(reaped.values.allSatisfy { $0 == .exited(0) })
        #expect(throws: Errno(ECHILD, operation: "waitpid", subject: "\(leader)")) { _ = try ChildProcess.tryWait(leader) }
    }

    @Test func tryWaitSeesARunningChild() throws {
        let pid = try ChildProcess.spawn(["/bin/sleep", "5"])
        #expect(try ChildProcess.tryWait(pid) == nil)
        try ChildProcess.signal(pid, SIGKILL)
        #expect(try ChildProcess.wait(pid) == .signaled(SIGKILL))
    }

    @Test func signalDescriptorDeliversBlockedSignals() throws {
        // Synchronous test: the whole body runs on one thread, whose mask is restored at the end.
        let set = SignalSet([SIGUSR1])
        try Signals.block(set)
        defer { try? Signals.unblock(set) }
        let signals = try SignalDescriptor(set, nonBlocking: true)
        #expect(try signals.next() == nil)
        pthread_kill(pthread_self(), SIGUSR1)
        #expect(try signals.next() == SIGUSR1)
        #expect(try signals.next() == nil)
        #expect(set.contains(SIGUSR1) && !set.contains(SIGUSR2))
    }
}

import Foundation
import Testing
@testable import KilnVM

/// A stand-in for QEMU: a real shell script that ignores QEMU's arguments and plays a console script. It tests
/// the VM logic (READY, phase failures, timeouts, exits, console input) in milliseconds and without a kernel.
private func fakeQEMU(_ name: String, _ body: String) throws -> String {
    let directory = NSTemporaryDirectory() + "kiln-vm-fake-\(getpid())-\(name)"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    let path = "\(directory)/\(name)"
    try ("#!/bin/sh\n" + body + "\n").write(toFile: path, atomically: true, encoding: .utf8)
    chmod(path, 0o755)
    return path
}

/// Stops the VM and removes its fake QEMU script.
private func discard(_ vm: VirtualMachine) {
    vm.stop(grace: 0.1)
    try? FileManager.default.removeItem(atPath: (vm.command.binary as NSString).deletingLastPathComponent)
}

private func fakeVM(_ name: String, _ body: String, scale: Double = 1) throws -> VirtualMachine {
    var command = QEMUCommand(kernel: "/nonexistent/vmlinuz")
    command.binary = try fakeQEMU(name, body)
    return VirtualMachine(name: name, command: command, timeoutScale: TimeoutScale(scale))
}

@Suite(.serialized) struct VirtualMachineTests {
    @Test func readyReportHasEveryMilestoneAndPoweroffGoesThroughTheConsole() throws {
        let vm = try fakeVM("ready", #"""
            printf '[    0.000000] Linux version 6.1.0 (fake)\r\n'
            sleep 0.1
            printf '[    0.500000] Run /init as init process\r\n'
            printf 'KILN {"event":"phase","phase":"mount","ms":1.2}\r\nKILN {"event":"phase","phase":"links","ms":3'
            sleep 0.1
            printf '.4}\r\nKILN {"event":"ready","ms":40}\r\n'
            while read line; do
              if [ "$line" = poweroff ]; then printf 'reboot: Power down\r\n'; exit 0; fi
            done
            exit 7
            """#)
        defer { discard(vm) }
        try vm.start()
        let report = try vm.waitForReady(timeout: 10)
        #expect(report.isReady)
        #expect(report.milestones.map(\.name) == ["kernel", "init", "phase:mount", "phase:links", "ready"])
        let times = report.milestones.map(\.seconds)
        #expect(times == times.sorted())
        #expect(report.events.map(\.name) == ["phase", "phase", "ready"])
        #expect(report.events[1].milliseconds == 3.4)
        #expect(try #require(report.initToReady) >= 0)
        #expect(report.guestInitToReadyMilliseconds == 40)
        #expect(vm.shutdown(grace: 5) == .exited(0))
        #expect(vm.console?.tail.last?.text == "reboot: Power down")
    }

    @Test func failedPhaseIsNamedWithItsError() throws {
        let vm = try fakeVM("phase-failed", #"""
            printf 'KILN {"event":"phase","phase":"links","ms":2}\n'
            printf 'KILN {"event":"phase-failed","phase":"firewall","error":"nft: syntax error"}\n'
            exec sleep 300
            """#)
        defer { discard(vm) }
        try vm.start()
        let report = try #require(bootFailure { try vm.waitForReady(timeout: 10) })
        #expect(report.outcome == .phaseFailed(phase: "firewall", error: "nft: syntax error"))
        #expect(report.failureSummary == "VM phase-failed: phase firewall failed: nft: syntax error")
        #expect(report.consoleTail.count == 2)
        let pid = try #require(vm.pid)
        // The guest ignores "poweroff" and there is no QMP socket: SIGTERM ends it.
        #expect(vm.shutdown(grace: 0.2) == .signaled(SIGTERM))
        #expect(processState(pid) == nil)
    }

    @Test func silenceTimesOutAfterTheScaledDeadlineWithTheTail() throws {
        let vm = try fakeVM("silent", "echo 'only line'; exec sleep 300", scale: 2)
        defer { discard(vm) }
        try vm.start()
        let report = try #require(bootFailure { try vm.waitForReady(timeout: 0.4) })
        #expect(report.outcome == .timedOut(seconds: 0.8))
        #expect(report.failureSummary == "VM silent: no READY within 0.8 s")
        #expect(report.consoleTail.map(\.text) == ["only line"])
        vm.stop()
        #expect(vm.termination != nil)
    }

    @Test func qemuExitingBeforeReadyIsReportedWithStderr() throws {
        let vm = try fakeVM("exits", "echo 'some console'; echo 'qemu: could not open kernel' >&2; exit 1")
        defer { discard(vm) }
        try vm.start()
        let report = try #require(bootFailure { try vm.waitForReady(timeout: 10) })
        #expect(report.outcome == .exited(status: "exit status 1", stderr: "qemu: could not open kernel"))
        #expect(report.text.contains("some console"))
    }

    @Test func readyPrintedJustBeforeExitStillCounts() throws {
        let vm = try fakeVM("ready-exit", #"printf 'KILN {"event":"ready"}'; exit 0"#)
        defer { discard(vm) }
        try vm.start()
        #expect(try vm.waitForReady(timeout: 10).isReady)
    }

    @Test func startingTwiceAndWaitingBeforeStartAreStateErrors() throws {
        let vm = try fakeVM("twice", "exec sleep 300")
        defer { discard(vm) }
        #expect(throws: VMError.self) { _ = try vm.waitForReady(timeout: 1) }
        try vm.start()
        #expect(throws: VMError.self) { try vm.start() }
    }

    @Test func fileConsoleIsFollowed() throws {
        let directory = NSTemporaryDirectory() + "kiln-vm-console-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let log = directory + "/console.log"
        var command = QEMUCommand(kernel: "/nonexistent/vmlinuz")
        command.binary = try fakeQEMU("file-console", """
            printf '[    0.000000] Linux version 6.1\\n' > \(log)
            sleep 0.3
            printf 'KILN {"event":"re' >> \(log)
            sleep 0.1
            printf 'ady"}\\n' >> \(log)
            exec sleep 300
            """)
        command.console = .file(log)
        let vm = VirtualMachine(name: "file-console", command: command, timeoutScale: TimeoutScale(1))
        defer { discard(vm) }
        try vm.start()
        let report = try vm.waitForReady(timeout: 10)
        #expect(report.milestones.map(\.name) == ["kernel", "init", "ready"])
        #expect(throws: VMError.self) { try vm.sendConsoleLine("poweroff") }
    }
}

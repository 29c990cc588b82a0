import Foundation
import Testing
@testable import KilnVM

/// The guest kernel for real boots: `KILN_TEST_KERNEL=/path/to/vmlinuz` (Debian's cloud kernel). Without it the
/// QEMU boot tests are skipped, and the skip says why.
private let testKernel: String? = {
    guard let path = ProcessInfo.processInfo.environment["KILN_TEST_KERNEL"], !path.isEmpty else { return nil }
    return FileManager.default.isReadableFile(atPath: path) ? path : nil
}()

private let qemuAvailable = FileManager.default.isExecutableFile(atPath: "/usr/bin/qemu-system-x86_64")
private let kernelMissing = "set KILN_TEST_KERNEL=/path/to/vmlinuz (a Debian cloud kernel) to boot QEMU"

private func scratchDirectory(_ name: String) throws -> String {
    let path = NSTemporaryDirectory() + "kiln-vm-\(name)-\(getpid())"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// A kernel without an initramfs: it boots under TCG, finds no root fs and panics. QEMU then exits 0 (-no-reboot),
/// which must not pass for success.
private func panicCommand(kernel: String, machine: MachineType, qmp: String?) -> QEMUCommand {
    var command = QEMUCommand(kernel: kernel, append: "console=ttyS0 panic=-1", memoryMiB: 256, accelerator: .tcg)
    command.machine = machine
    command.qmpSocket = qmp
    command.nics = [NIC(id: "n0", mac: "52:54:00:12:34:56", backend: .unconnected)]
    return command
}

@Suite(.serialized, .tags(.qemu)) struct QEMUBootTests {
    /// Needs no kernel: QEMU paused before the firmware runs (-S) answers QMP.
    @Test(.enabled(if: qemuAvailable))
    func qmpTalksToARealQEMU() throws {
        let directory = try scratchDirectory("qmp-paused")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var command = QEMUCommand(memoryMiB: 64)
        command.firmware = .bios("bios.bin")
        command.qmpSocket = directory + "/vm.qmp"
        command.extraArguments = ["-S"]
        let vm = VirtualMachine(name: "paused", command: command)
        try vm.start()
        defer { vm.stop() }
        let deadline = Deadline.after(seconds: 10)
        var status: ConsoleValue?
        while status == nil && !deadline.hasPassed {
            status = try? QMPClient.execute("query-status", socket: directory + "/vm.qmp", deadline: deadline)
            if status == nil { usleep(50_000) }
        }
        guard case .object(let fields)? = status else {
            Issue.record("no query-status reply: \(String(describing: status))")
            return
        }
        #expect(fields["running"] == .bool(false))
        #expect(fields["status"] == .string("prelaunch"))
        #expect {
            try QMPClient.execute("no-such-command", socket: directory + "/vm.qmp", deadline: .after(seconds: 5))
        } throws: { "\($0)".contains("CommandNotFound") }
        try QMPClient.execute("quit", socket: directory + "/vm.qmp", deadline: .after(seconds: 5))
        #expect(vm.shutdown(grace: 1) == .exited(0))
    }

    /// Real QEMU 7.2 accepts every NIC backend as built: two paused VMs linked by a dgram pair and a stream
    /// socket (listener first: 7.2 has no reconnect), plus an unconnected NIC. Needs no kernel and no root.
    @Test(.enabled(if: qemuAvailable))
    func socketLinkedVMsAreAcceptedByQEMU() throws {
        let directory = try scratchDirectory("links")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        func paused(_ name: String, _ nics: [NIC]) -> VirtualMachine {
            var command = QEMUCommand(memoryMiB: 64, nics: nics)
            command.firmware = .bios("bios.bin")
            command.qmpSocket = "\(directory)/\(name).qmp"
            command.extraArguments = ["-S"]
            return VirtualMachine(name: name, command: command)
        }
        let a = paused("a", [
            NIC(id: "toB", mac: "52:54:00:00:0a:01", backend: .dgram(localPath: directory + "/a.dgram", remotePath: directory + "/b.dgram")),
            NIC(id: "up", mac: "52:54:00:00:0a:02", backend: .streamListen(path: directory + "/link.stream")),
            NIC(id: "spare", mac: "52:54:00:00:0a:03", backend: .unconnected),
        ])
        let b = paused("b", [
            NIC(id: "toA", mac: "52:54:00:00:0b:01", backend: .dgram(localPath: directory + "/b.dgram", remotePath: directory + "/a.dgram")),
            NIC(id: "down", mac: "52:54:00:00:0b:02", backend: .streamConnect(path: directory + "/link.stream")),
        ])
        try a.start()
        defer { a.stop() }
        let listening = Deadline.after(seconds: 10)
        while !FileManager.default.fileExists(atPath: directory + "/link.stream") && !listening.hasPassed && a.termination == nil {
            usleep(20_000)
        }
        try b.start()
        defer { b.stop() }
        for vm in [a, b] {
            let socket = try #require(vm.command.qmpSocket)
            let deadline = Deadline.after(seconds: 10)
            var status: ConsoleValue?
            while status == nil && !deadline.hasPassed && vm.termination == nil {
                status = try? QMPClient.execute("query-status", socket: socket, deadline: deadline)
                if status == nil { usleep(50_000) }
            }
            #expect(status != nil, "VM \(vm.name) exited: \(String(describing: vm.termination))")
        }
        // QEMU 7.2 connects a stream client asynchronously; "info network" names the peer once it is connected,
        // so ask until it does (at most 10 s).
        let peer = "down: index=0,type=stream,unix:\(directory)/link.stream"
        let connected = Deadline.after(seconds: 10)
        var network = ConsoleValue.string("")
        while network.stringValue?.contains(peer) != true && !connected.hasPassed {
            network = try QMPClient.execute(
                "human-monitor-command", arguments: ["command-line": .string("info network")],
                socket: try #require(b.command.qmpSocket), deadline: .after(seconds: 5))
            if network.stringValue?.contains(peer) != true { usleep(50_000) }
        }
        #expect(network.stringValue?.contains(peer) == true, "\(network)")
        #expect(a.shutdown(grace: 0.2) == .exited(0))
        #expect(b.shutdown(grace: 0.2) == .exited(0))
    }

    @Test(.enabled(if: testKernel != nil && qemuAvailable, Comment(rawValue: kernelMissing)),
          arguments: MachineType.allCases)
    func kernelPanicFailsTheBootAndQEMUIsReaped(machine: MachineType) throws {
        let kernel = try #require(testKernel)
        let vm = VirtualMachine(name: "panic-\(machine.rawValue)", command: panicCommand(kernel: kernel, machine: machine, qmp: nil))
        try vm.start()
        let pid = try #require(vm.pid)
        let failed = try #require(bootFailure { try vm.waitForReady(timeout: 120) })
        guard case .kernelPanic(let message) = failed.outcome else {
            Issue.record("expected a kernel panic, got \(failed.outcome)\n\(failed.text)")
            return
        }
        #expect(message.hasPrefix("VFS: Unable to mount root fs"))
        let kernelAt = try #require(failed.seconds(BootMilestone.kernel))
        let panicAt = try #require(failed.seconds(BootMilestone.panic))
        #expect(kernelAt < panicAt)
        #expect(failed.consoleTail.contains { $0.text.contains("Kernel panic - not syncing") })
        print("measure machine=\(machine.rawValue) accel=tcg first-kernel-line=\(threeDecimals(kernelAt)) s panic=\(threeDecimals(panicAt)) s")
        vm.stop()
        #expect(vm.termination == .exited(0))  // QEMU's status after a panic: why only READY counts
        #expect(processState(pid) == nil)
    }

    @Test(.enabled(if: testKernel != nil && qemuAvailable, Comment(rawValue: kernelMissing)))
    func qmpQuitStopsABootingGuest() throws {
        let kernel = try #require(testKernel)
        let directory = try scratchDirectory("qmp")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let socket = directory + "/vm.qmp"
        let vm = VirtualMachine(name: "qmp", command: panicCommand(kernel: kernel, machine: .pc, qmp: socket))
        try vm.start()
        let console = try #require(vm.console)
        _ = console  // started
        let deadline = TimeoutScale.fromEnvironment().deadline(after: 60)
        while vm.console?.milestone(BootMilestone.kernel) == nil && !deadline.hasPassed && vm.termination == nil {
            usleep(50_000)
        }
        #expect(vm.console?.milestone(BootMilestone.kernel) != nil)
        // The kernel does not read "poweroff" from its console, so shutdown falls through to QMP quit.
        let start = Deadline.now()
        let termination = vm.shutdown(grace: 0.3)
        #expect(termination == .exited(0))
        #expect(start.seconds(until: .now()) < 10)
        #expect(!FileManager.default.fileExists(atPath: socket))
    }

    @Test(.enabled(if: testKernel != nil && qemuAvailable && getuid() == 0, Comment(rawValue: kernelMissing + " (as root)")))
    func tapNICInsideANetworkNamespace() throws {
        let kernel = try #require(testKernel)
        let namespace = "kiln-vmtest-\(getpid())"
        let add = try ManagedProcess(["ip", "netns", "add", namespace])
        #expect(add.wait(timeout: 10) == .exited(0), "\(add.errorText)")
        defer { _ = try? ManagedProcess(["ip", "netns", "del", namespace]).wait(timeout: 10) }

        var command = panicCommand(kernel: kernel, machine: .pc, qmp: nil)
        command.nics = [NIC(id: "wan", mac: "52:54:00:00:01:01", backend: .tap(ifname: "kt-wan"))]
        let vm = VirtualMachine(name: "netns", command: command, networkNamespace: namespace)
        try vm.start()
        defer { vm.stop() }
        let deadline = TimeoutScale.fromEnvironment().deadline(after: 60)
        while vm.console?.milestone(BootMilestone.kernel) == nil && !deadline.hasPassed && vm.termination == nil {
            usleep(50_000)
        }
        #expect(vm.console?.milestone(BootMilestone.kernel) != nil)
        let show = try ManagedProcess(["ip", "-n", namespace, "link", "show", "kt-wan"], networkNamespace: nil)
        #expect(show.wait(timeout: 10) == .exited(0))
        #expect(show.outputText.contains("kt-wan"))
        let outside = try ManagedProcess(["ip", "link", "show", "kt-wan"])
        #expect(outside.wait(timeout: 10) != .exited(0))  // the TAP lives only in the namespace
    }
}

/// Builds an uncompressed newc initramfs whose /init is a busybox shell script speaking Kiln's console protocol:
/// two phases, READY, then `poweroff` read from the console. Needs root (for /dev/console) and cpio.
private func busyboxInitramfs(in directory: String) throws -> String {
    let root = directory + "/root"
    let fm = FileManager.default
    for sub in ["bin", "dev", "proc", "lib/x86_64-linux-gnu", "lib64"] {
        try fm.createDirectory(atPath: "\(root)/\(sub)", withIntermediateDirectories: true)
    }
    for library in ["/lib/x86_64-linux-gnu/libc.so.6", "/lib/x86_64-linux-gnu/libresolv.so.2", "/lib64/ld-linux-x86-64.so.2"] {
        let real = URL(fileURLWithPath: library).resolvingSymlinksInPath().path  // copy files, not host symlinks
        try fm.copyItem(atPath: real, toPath: root + library)
    }
    try fm.copyItem(atPath: "/bin/busybox", toPath: root + "/bin/busybox")
    let script = """
        #!/bin/busybox sh
        echo 'KILN {"event":"phase","phase":"mount","ms":0.5}'
        echo 'KILN {"event":"phase","phase":"links","ms":1.5}'
        echo 'KILN {"event":"ready","ms":2}'
        while read line; do
          if [ "$line" = poweroff ]; then echo 'KILN {"event":"shutdown"}'; /bin/busybox poweroff -f; fi
        done
        """
    try (script + "\n").write(toFile: root + "/init", atomically: false, encoding: .utf8)
    chmod(root + "/init", 0o755)
    // makedev(5, 1) is a C macro: /dev/console, so /init has a console for stdin and stdout.
    guard mknod(root + "/dev/console", S_IFCHR | 0o600, dev_t((5 << 8) | 1)) == 0 else {
        throw VMError.system(operation: "mknod", subject: root + "/dev/console", errno: errno)
    }
    let image = directory + "/initramfs.cpio"
    let cpio = try ManagedProcess(.init(
        arguments: ["sh", "-c", "find . | sort | cpio -o -H newc --quiet > \(image)"], workingDirectory: root))
    #expect(cpio.wait(timeout: 60) == .exited(0), "\(cpio.errorText)")
    return image
}

private let busyboxAvailable = getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/bin/busybox")
    && FileManager.default.isExecutableFile(atPath: "/usr/bin/cpio")

extension QEMUBootTests {
    /// The whole path to success: kernel → /init → phases → READY, then a console `poweroff` that the guest obeys.
    @Test(.enabled(if: testKernel != nil && qemuAvailable && busyboxAvailable,
                   Comment(rawValue: kernelMissing + " (as root, with busybox and cpio)")))
    func busyboxGuestReachesReadyAndPowersOffFromTheConsole() throws {
        let kernel = try #require(testKernel)
        let directory = try scratchDirectory("busybox")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var command = panicCommand(kernel: kernel, machine: .pc, qmp: directory + "/vm.qmp")
        command.initrd = try busyboxInitramfs(in: directory)
        command.append = "console=ttyS0 panic=-1"  // not quiet: it hides "Linux version" (KERN_NOTICE)
        let vm = VirtualMachine(name: "busybox", command: command)
        try vm.start()
        defer { vm.stop() }
        let report = try vm.waitForReady(timeout: 120)
        #expect(report.milestones.map(\.name) == ["kernel", "init", "phase:mount", "phase:links", "ready"])
        print("measure busybox guest: \(report.milestones.map { "\($0.name)=\(threeDecimals($0.seconds))" }.joined(separator: " "))")
        let start = Deadline.now()
        #expect(vm.shutdown(grace: 20) == .exited(0))
        print("measure console poweroff took \(threeDecimals(start.seconds(until: .now()))) s")
        #expect(vm.console?.events.last?.name == "shutdown")  // the guest, not QMP, ended it
    }
}

extension Tag {
    /// Tests that boot QEMU (slow; need KILN_TEST_KERNEL).
    @Tag static var qemu: Self
}

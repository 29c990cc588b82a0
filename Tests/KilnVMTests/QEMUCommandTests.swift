import Testing
import KilnConfig
@testable import KilnVM

@Suite struct QEMUCommandTests {
    private func routerCommand() -> QEMUCommand {
        var command = QEMUCommand(
            kernel: "/out/router/vmlinuz", initrd: "/out/router/initramfs.cpio.zst", append: "console=ttyS0 panic=-1 quiet",
            memoryMiB: 256, cpus: 2, accelerator: .tcg,
            nics: [
                NIC(id: "wan", mac: "52:54:00:00:01:01", backend: .tap(ifname: "kt-wan")),
                NIC(id: "lan", mac: "52:54:00:00:01:02", backend: .dgram(localPath: "/run/k/a.sock", remotePath: "/run/k/b.sock")),
                NIC(id: "up", mac: "52:54:00:00:01:03", backend: .streamListen(path: "/run/k/s,1.sock")),
                NIC(id: "down", mac: "52:54:00:00:01:04", backend: .streamConnect(path: "/run/k/s2.sock")),
                NIC(id: "spare", mac: "52:54:00:00:01:05", backend: .unconnected),
                NIC(id: "spare2", mac: "52:54:00:00:01:06", backend: .unconnected, slot: 0x1e),
            ])
        command.name = "r1"
        command.qmpSocket = "/run/k/r1.qmp"
        return command
    }

    @Test func routerArgvIsGolden() throws {
        let expected = [
            "qemu-system-x86_64", "-name", "r1", "-machine", "pc", "-accel", "tcg", "-cpu", "qemu64,+rdrand",
            "-m", "256", "-smp", "2", "-nographic", "-no-reboot", "-nodefaults", "-no-user-config",
            "-kernel", "/out/router/vmlinuz", "-initrd", "/out/router/initramfs.cpio.zst",
            "-append", "console=ttyS0 panic=-1 quiet",
            "-chardev", "stdio,id=console,signal=off", "-serial", "chardev:console",
            "-chardev", "socket,id=qmp,path=/run/k/r1.qmp,server=on,wait=off", "-mon", "chardev=qmp,mode=control",
            "-netdev", "tap,id=wan,ifname=kt-wan,script=no,downscript=no",
            "-device", "virtio-net-pci,netdev=wan,mac=52:54:00:00:01:01,addr=0x03,romfile=",
            "-netdev", "dgram,id=lan,local.type=unix,local.path=/run/k/a.sock,remote.type=unix,remote.path=/run/k/b.sock",
            "-device", "virtio-net-pci,netdev=lan,mac=52:54:00:00:01:02,addr=0x04,romfile=",
            "-netdev", "stream,id=up,server=on,addr.type=unix,addr.path=/run/k/s,,1.sock",
            "-device", "virtio-net-pci,netdev=up,mac=52:54:00:00:01:03,addr=0x05,romfile=",
            "-netdev", "stream,id=down,server=off,addr.type=unix,addr.path=/run/k/s2.sock",
            "-device", "virtio-net-pci,netdev=down,mac=52:54:00:00:01:04,addr=0x06,romfile=",
            "-netdev", "hubport,id=spare,hubid=0",
            "-device", "virtio-net-pci,netdev=spare,mac=52:54:00:00:01:05,addr=0x07,romfile=",
            "-netdev", "hubport,id=spare2,hubid=1",
            "-device", "virtio-net-pci,netdev=spare2,mac=52:54:00:00:01:06,addr=0x1e,romfile=",
        ]
        #expect(try routerCommand().arguments() == expected)
    }

    @Test func kvmFirmwareDrivesAndFileConsoleAreGolden() throws {
        var command = QEMUCommand(memoryMiB: 512, accelerator: .kvm)
        command.machine = .q35
        command.firmware = .pflash(code: "/usr/share/OVMF/OVMF_CODE_4M.fd", vars: "/tmp/vm/vars.fd")
        command.drives = [Drive(path: "/out/r.qcow2", format: "qcow2"), Drive(path: "/out/r.iso", kind: .cdrom)]
        command.console = .file("/tmp/vm/console.log")
        command.extraArguments = ["-S"]
        #expect(try command.arguments() == [
            "qemu-system-x86_64", "-machine", "q35", "-accel", "kvm", "-cpu", "host", "-m", "512", "-smp", "1",
            "-nographic", "-no-reboot", "-nodefaults", "-no-user-config",
            "-drive", "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd",
            "-drive", "if=pflash,format=raw,unit=1,file=/tmp/vm/vars.fd",
            "-chardev", "file,id=console,path=/tmp/vm/console.log", "-serial", "chardev:console",
            "-drive", "file=/out/r.qcow2,format=qcow2,if=none,id=drive0",
            "-device", "virtio-blk-pci,drive=drive0,addr=0x10",
            "-drive", "file=/out/r.iso,format=raw,if=none,id=drive1,media=cdrom,readonly=on",
            "-device", "ide-cd,drive=drive1", "-S",
        ])
    }

    @Test func stdioConsoleCanBeLoggedByQEMU() throws {
        var command = QEMUCommand(kernel: "/k")
        command.console = .stdio(logFile: "/tmp/c.log")
        #expect(try command.arguments().contains("stdio,id=console,signal=off,logfile=/tmp/c.log,logappend=off"))
    }

    private static let badSettings: [(mutation: String, message: String)] = [
        ("no kernel", "nothing to boot"),
        ("duplicate id", "is used twice"),
        ("multicast mac", "not a unicast address"),
        ("short mac", "not a unicast address"),
        ("bad id", "must be a letter"),
        ("slot taken", "already taken"),
        ("slot 0x1f", "outside"),
        ("long tap", "1–15 characters"),
        ("no cpus", "CPUs"),
        ("tiny memory", "below 16 MiB"),
    ]

    @Test(arguments: badSettings)
    func invalidSettingsAreRejectedByName(_ bad: (mutation: String, message: String)) {
        var command = routerCommand()
        switch bad.mutation {
        case "no kernel": command.kernel = nil; command.initrd = nil; command.append = nil
        case "duplicate id": command.nics[1].id = "wan"
        case "multicast mac": command.nics[0].mac = "53:54:00:00:01:01"
        case "short mac": command.nics[0].mac = "52:54:00:00:01"
        case "bad id": command.nics[0].id = "0wan"
        case "slot taken": command.nics[0].slot = 0x04
        case "slot 0x1f": command.nics[0].slot = 0x1f
        case "long tap": command.nics[0].backend = .tap(ifname: "a-very-long-tap-name")
        case "no cpus": command.cpus = 0
        case "tiny memory": command.memoryMiB = 8
        default: Issue.record("unknown mutation \(bad.mutation)")
        }
        #expect {
            _ = try command.arguments()
        } throws: { error in
            "\(error)".contains(bad.message)
        }
    }

    @Test func slotsDefaultToPositionAndAcceleratorArgumentsAreFixed() {
        #expect(routerCommand().nicSlots() == [3, 4, 5, 6, 7, 0x1e])
        #expect(Accelerator.tcg.qemuArguments == ["-accel", "tcg", "-cpu", "qemu64,+rdrand"])
        #expect(Accelerator.kvm.qemuArguments == ["-accel", "kvm", "-cpu", "host"])
    }

    @Test func oneVCPUTCGBootsSkipACPIInterruptLinksAndOthersKeepSMP() {
        #expect(Accelerator.tcg.defaultCPUs == 1 && Accelerator.kvm.defaultCPUs == 2)
        let base = "console=ttyS0 panic=-1 quiet"
        #expect(Accelerator.tcg.commandLine(base, cpus: 1) == base + " acpi=noirq")
        // acpi=noirq turns SMP off: never with more than one vCPU, never under KVM.
        #expect(Accelerator.tcg.commandLine(base, cpus: 2) == base)
        #expect(Accelerator.kvm.commandLine(base, cpus: 1) == base)
        #expect(Accelerator.tcg.commandLine("", cpus: 1) == "acpi=noirq")
    }

    @Test func timeoutScaleParsesTheEnvironment() {
        #expect(TimeoutScale.fromEnvironment(["KILN_TIMEOUT_SCALE": "3"]).factor == 3)
        #expect(TimeoutScale.fromEnvironment(["KILN_TIMEOUT_SCALE": " 2.5 "]).scale(2) == 5)
        #expect(TimeoutScale.fromEnvironment(["KILN_TIMEOUT_SCALE": "zero"]).factor == 1)
        #expect(TimeoutScale.fromEnvironment(["KILN_TIMEOUT_SCALE": "-1"]).factor == 1)
        #expect(TimeoutScale.fromEnvironment([:]).factor == 1)
    }

    @Test func hypervisorBootStartsXenWithTheImageAsItsModules() throws {
        var command = QEMUCommand(kernel: "/out/xh/vmlinuz", initrd: "/out/xh/initramfs.cpio.zst",
                                  append: "console=hvc0 quiet", memoryMiB: 1536, accelerator: .tcg)
        command.hypervisor = Hypervisor(path: "/out/xh/xen", append: "console=com1 dom0_mem=512M,max:512M")
        let argv = try command.arguments()
        let kernel = try #require(argv.firstIndex(of: "-kernel"))
        #expect(Array(argv[kernel..<kernel + 6]) == ["-kernel", "/out/xh/xen", "-append", "console=com1 dom0_mem=512M,max:512M",
                                                     "-initrd", "/out/xh/vmlinuz console=hvc0 quiet,/out/xh/initramfs.cpio.zst"])
        #expect(argv.filter { $0 == "-kernel" || $0 == "-initrd" || $0 == "-append" }.count == 3)
        // A comma inside a module's command line is doubled, as QEMU's multiboot loader reads it.
        command.append = "a=1,2"
        #expect(try command.arguments().contains("/out/xh/vmlinuz a=1,,2,/out/xh/initramfs.cpio.zst"))
        command.initrd = nil
        #expect(throws: VMError.self) { try command.arguments() }
    }
}

/// The NIC count manifest validation allows is exactly what a command line with a boot disk can hold.
@Suite struct NICCapacityTests {
    func command(nics: Int, disk: Bool) -> QEMUCommand {
        var command = QEMUCommand(kernel: "/k", initrd: "/i", nics: (0..<nics).map {
            NIC(id: "n\($0)", mac: "52:54:00:00:02:\(String($0, radix: 16).count == 1 ? "0" : "")\(String($0, radix: 16))", backend: .unconnected)
        })
        if disk { command.drives = [Drive(path: "/d.raw", format: "raw", readOnly: true)] }
        return command
    }

    @Test(arguments: [true, false]) func capacityFitsAndOneMoreDoesNot(disk: Bool) throws {
        let capacity = PCISlots.nicCapacity(withDisk: disk)
        _ = try command(nics: capacity, disk: disk).arguments()
        #expect(throws: VMError.self) { _ = try command(nics: capacity + 1, disk: disk).arguments() }
    }
}

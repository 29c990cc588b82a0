import ArgumentParser
import Foundation
import KilnSystem
import KilnImage
import KilnVM
import Logging

struct Boot: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Boot a built appliance in QEMU and wait until it reports READY.",
        discussion: """
        Starts QEMU with the image's virtio NICs (not connected to anything), KVM when a probe shows it works and
        TCG otherwise, and watches the serial console. Exits 0 when READY arrives (then powers the guest off,
        unless --keep), 1 with the failed phase and the console tail when it does not.
        """)

    @Argument(help: "A build output directory (out/<name>) or a manifest, which is built first.")
    var target: String

    @Option(name: .long, help: "auto, kvm or tcg.")
    var accel: AcceleratorRequest = .auto

    @Option(name: .long, help: "vCPUs for the VM (default: 2 under KVM, 1 under TCG; kiln-init loads kernel modules on all of them).")
    var cpus: Int?

    @Option(name: .long, help: "Seconds to wait for READY (multiplied by KILN_TIMEOUT_SCALE).")
    var timeout: Double = 60

    @Option(name: .long, help: "kernel-initrd (direct kernel boot), or raw, qcow2 or iso: the disk image under OVMF (UEFI).")
    var format: BootFormat = .kernelInitrd

    @Option(name: .long, help: "OVMF code image for disk boots.")
    var ovmfCode = "/usr/share/OVMF/OVMF_CODE_4M.fd"

    @Option(name: .long, help: "OVMF variable store template; each boot gets a fresh copy.")
    var ovmfVars = "/usr/share/OVMF/OVMF_VARS_4M.fd"

    @Option(name: .customLong("qemu-arg"), parsing: .unconditionalSingleValue,
            help: "An argument appended to QEMU's command line (repeat for several), e.g. --qemu-arg=-icount --qemu-arg=shift=0,sleep=off.")
    var qemuArguments: [String] = []

    @Option(name: .long, help: "Memory in MiB (default 256; 1536 for a Xen host image, which holds dom0 and its guests).")
    var memory: Int?

    @Flag(name: .long, help: "Echo the guest console while booting.")
    var console = false

    @Flag(name: .long, help: "Keep the VM running after READY until Ctrl-C (console on stdin/stdout).")
    var keep = false

    @OptionGroup var flags: BuildFlags
    @OptionGroup var global: GlobalOptions

    func run() throws {
        let logger = Log.setUp(verbose: global.verbose)
        LeftoverChildren.sweepAndRecord()
        defer { RunRecord.shared.finish() }
        var directory = target
        if target.hasSuffix(".yaml") {
            let info = try BuildRunner.run(flags.options(for: target), logger: logger, json: global.json)
            directory = flags.out + "/" + info.name
        }
        let info: BuildInfo
        do { info = try BuildInfo.read(directory: directory) } catch { throw CLIErrors.fail("\(error)", code: 2) }
        let kernel = directory + "/vmlinuz"
        let verdict = AcceleratorProbe(kernel: kernel, logger: logger).resolve(accel)
        var command = QEMUCommand(kernel: kernel, initrd: directory + "/initramfs.cpio.zst", append: nil,
                                  cpus: cpus ?? verdict.accelerator.defaultCPUs, accelerator: verdict.accelerator,
                                  nics: info.nics.enumerated().map { i, nic in
                                      NIC(id: nic.name.replacingOccurrences(of: ".", with: "_"),
                                          mac: nic.mac ?? String(format: "52:54:00:6b:00:%02x", i + 1), backend: .unconnected)
                                  })
        command.append = verdict.accelerator.commandLine(info.cmdline, cpus: command.cpus)
        if let hypervisor = info.hypervisor {
            // A Xen host: QEMU starts the hypervisor with this kernel (its command line as built) as dom0.
            command.hypervisor = Hypervisor(path: directory + "/" + hypervisor.file, append: hypervisor.cmdline)
            command.append = info.cmdline
            command.memoryMiB = memory ?? 1536
        } else if let memory {
            command.memoryMiB = memory
        }
        var varsCopy: String?
        defer { if let varsCopy { try? FileManager.default.removeItem(atPath: varsCopy) } }
        if let file = format.file {
            guard info.artifact(file) != nil else {
                throw CLIErrors.fail("\(directory) has no \(file): add \(format.rawValue) to the base's formats and rebuild", code: 2)
            }
            for f in [ovmfCode, ovmfVars] where !FileManager.default.isReadableFile(atPath: f) {
                throw CLIErrors.fail("OVMF firmware \(f) not found (Debian's ovmf package; Scripts/install-deps)", code: 3)
            }
            let vars = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-vars-\(getpid()).fd").path
            try? FileManager.default.removeItem(atPath: vars)
            try FileManager.default.copyItem(atPath: ovmfVars, toPath: vars)
            varsCopy = vars
            command.kernel = nil
            command.initrd = nil
            command.append = nil
            command.firmware = .pflash(code: ovmfCode, vars: vars)
            command.drives = [format == .iso ? Drive(path: directory + "/" + file, kind: .cdrom)
                                             : Drive(path: directory + "/" + file, format: format.rawValue, readOnly: true)]
        }
        command.extraArguments = qemuArguments
        command.qmpSocket = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-qmp-\(getpid()).sock").path
        let echo = console || keep
        let vm = VirtualMachine(name: info.name, command: command, logger: logger, onConsole: { signal in
            if echo, case let .line(line) = signal { FileHandle.standardError.write(Data((line.text + "\n").utf8)) }
        })
        FileHandle.standardError.write(Data("booting \(info.name) with \(verdict.accelerator.rawValue) (\(verdict.reason))\n".utf8))
        do { try vm.start() } catch { throw CLIErrors.fail("\(error)", code: 3) }
        let report: BootReport
        do { report = try vm.waitForReady(timeout: timeout) } catch {
            vm.stop()
            if case let .bootFailed(r) = error { print(BootSummary.text(r)) } else { print("\(error)") }
            throw ExitCode(1)
        }
        print(global.json ? BootSummary.json(report) : BootSummary.text(report))
        if keep {
            FileHandle.standardError.write(Data("READY; Ctrl-C or `poweroff` on the console to stop\n".utf8))
            while vm.termination == nil {
                if let line = readLine() { try? vm.sendConsoleLine(line) } else { break }
            }
        }
        let end = vm.shutdown()
        if !global.json { print("powered off: \(end.map { "\($0)" } ?? "stopped")") }
    }
}

/// Renders a boot report for people or machines.
enum BootSummary {
    static func text(_ r: BootReport) -> String {
        let verdict: String
        switch r.outcome {
        case .ready: verdict = "READY"
        case let .phaseFailed(phase, error): verdict = "FAILED in phase \(phase): \(error)"
        case let .kernelPanic(message): verdict = "KERNEL PANIC: \(message)"
        case let .exited(status, stderr): verdict = "QEMU exited (\(status)) before READY: \(stderr)"
        case let .timedOut(seconds): verdict = "no READY within \(Int(seconds))s"
        }
        var out = "\(r.vm) [\(r.accelerator)]: \(verdict)\n"
        out += "  timeline: " + r.milestones.map { "\($0.name) \(String(format: "%.2f", $0.seconds))s" }.joined(separator: " → ")
        if let initToReady = r.initToReady {
            out += "\n  kiln-init /init → READY: \(String(format: "%.0f", initToReady * 1000)) ms"
        }
        if r.outcome != .ready {
            out += "\n  console (last \(min(30, r.consoleTail.count)) lines):\n" + r.consoleTail.suffix(30).map { "    | \($0.text)" }.joined(separator: "\n")
        }
        return out
    }

    static func json(_ r: BootReport) -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return (try? e.encode(r)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}

extension AcceleratorRequest: ExpressibleByArgument {}

/// What `kiln boot` starts: the kernel directly, or one of the disk images through UEFI firmware.
enum BootFormat: String, ExpressibleByArgument, CaseIterable {
    case kernelInitrd = "kernel-initrd"
    case raw, qcow2, iso

    /// The artifact booted through firmware, nil for a direct kernel boot.
    var file: String? {
        switch self {
        case .kernelInitrd: return nil
        case .raw: return "disk.raw"
        case .qcow2: return "disk.qcow2"
        case .iso: return "disk.iso"
        }
    }
}

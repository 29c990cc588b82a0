import KilnConfig

/// The x86 machine model.
public enum MachineType: String, Sendable, Codable, CaseIterable {
    /// i440FX + PIIX. Kiln's default: under TCG with a direct kernel boot it reached the kernel and the end of
    /// the boot as fast as q35 or faster, and it has fewer devices for the kernel to probe.
    case pc
    /// Q35 + ICH9 (PCIe); needed for some firmware setups (Secure Boot OVMF).
    case q35
}

/// Where the guest's serial console (ttyS0) goes.
public enum ConsoleTarget: Sendable, Equatable, Codable {
    /// QEMU's stdin/stdout (`signal=off`, so a ^C byte reaches the guest instead of killing QEMU), optionally
    /// copied to a log file by QEMU itself.
    case stdio(logFile: String?)
    /// Only a file (for VMs whose console nobody reads live).
    case file(String)
}

/// Firmware for disk-image boots; direct kernel boots need none.
public enum Firmware: Sendable, Equatable, Codable {
    /// A single firmware image via `-bios` (SeaBIOS, or a combined OVMF.fd).
    case bios(String)
    /// Split OVMF: read-only code and a writable copy of the variable store (`-drive if=pflash`).
    case pflash(code: String, vars: String?)
}

/// A disk or CD-ROM attached to the VM.
public struct Drive: Sendable, Equatable, Codable {
    /// How the guest sees the drive.
    public enum Kind: String, Sendable, Codable { case disk, cdrom }
    public var path: String
    /// `raw` or `qcow2` (disks only; QEMU never guesses a format).
    public var format: String
    public var kind: Kind
    public var readOnly: Bool

    public init(path: String, format: String = "raw", kind: Kind = .disk, readOnly: Bool = false) {
        self.path = path
        self.format = format
        self.kind = kind
        self.readOnly = readOnly
    }
}

/// A multiboot hypervisor file and its own command line.
public struct Hypervisor: Sendable, Equatable, Codable {
    public var path: String
    public var append: String
    public init(path: String, append: String) { self.path = path; self.append = append }
}

/// The complete QEMU command line of one VM, built as a pure function of these settings (golden-tested).
///
/// Device order and PCI slots are fixed: NIC *n* sits at slot 0x03+n unless it names its own, virtio disks from
/// 0x10, so guest interface names and PCI order never depend on what else is attached.
public struct QEMUCommand: Sendable, Equatable, Codable {
    public var binary = "qemu-system-x86_64"
    /// Shown in `ps` and QEMU's messages.
    public var name: String?
    public var machine: MachineType = .pc
    public var accelerator: Accelerator = .tcg
    public var memoryMiB = 256
    public var cpus = 1
    public var kernel: String?
    public var initrd: String?
    /// The kernel command line.
    public var append: String?
    /// A multiboot hypervisor (Xen) started as `-kernel`, with `kernel` + `append` and `initrd` as its modules:
    /// the image then boots as the hypervisor's first domain.
    public var hypervisor: Hypervisor?
    public var console: ConsoleTarget = .stdio(logFile: nil)
    /// A unix socket for QMP (clean `quit`), nil for none.
    public var qmpSocket: String?
    public var nics: [NIC] = []
    public var firmware: Firmware?
    public var drives: [Drive] = []
    /// Appended verbatim at the end.
    public var extraArguments: [String] = []

    public init(
        kernel: String? = nil, initrd: String? = nil, append: String? = nil,
        memoryMiB: Int = 256, cpus: Int = 1, accelerator: Accelerator = .tcg, nics: [NIC] = []
    ) {
        self.kernel = kernel
        self.initrd = initrd
        self.append = append
        self.memoryMiB = memoryMiB
        self.cpus = cpus
        self.accelerator = accelerator
        self.nics = nics
    }

    /// Lowest and highest PCI slot a device may take (0 is the host bridge, 1 the PIIX3/VGA, 0x1f the ICH9 LPC).
    public static let slotRange = PCISlots.usable
    static let firstNICSlot = PCISlots.firstNIC
    static let firstDiskSlot = PCISlots.firstDisk

    /// The PCI slot each NIC gets, in list order.
    public func nicSlots() -> [Int] {
        nics.enumerated().map { $0.element.slot ?? Self.firstNICSlot + $0.offset }
    }

    /// The argv, `binary` first. Throws `.invalidCommand` naming the first bad setting.
    public func arguments() throws(VMError) -> [String] {
        try validate()
        var argv = [binary]
        if let name { argv += ["-name", name] }
        argv += ["-machine", machine.rawValue] + accelerator.qemuArguments
        argv += ["-m", String(memoryMiB), "-smp", String(cpus)]
        argv += ["-nographic", "-no-reboot", "-nodefaults", "-no-user-config"]
        switch firmware {
        case .bios(let path)?: argv += ["-bios", path]
        case let .pflash(code, vars)?:
            argv += ["-drive", "if=pflash,format=raw,unit=0,readonly=on,file=\(qemuEscape(code))"]
            if let vars { argv += ["-drive", "if=pflash,format=raw,unit=1,file=\(qemuEscape(vars))"] }
        case nil: break
        }
        if let hypervisor, let kernel, let initrd {
            // QEMU's multiboot loader: modules separated by ',' (',,' for a comma inside one), each a file and
            // the command line the hypervisor hands to it.
            let modules = [kernel + (append.map { " " + $0 } ?? ""), initrd].map(qemuEscape)
            argv += ["-kernel", hypervisor.path, "-append", hypervisor.append, "-initrd", modules.joined(separator: ",")]
        } else {
            if let kernel { argv += ["-kernel", kernel] }
            if let initrd { argv += ["-initrd", initrd] }
            if let append { argv += ["-append", append] }
        }
        switch console {
        case .stdio(let logFile):
            let log = logFile.map { ",logfile=\(qemuEscape($0)),logappend=off" } ?? ""
            argv += ["-chardev", "stdio,id=console,signal=off\(log)"]
        case .file(let path):
            argv += ["-chardev", "file,id=console,path=\(qemuEscape(path))"]
        }
        argv += ["-serial", "chardev:console"]
        if let qmpSocket {
            argv += ["-chardev", "socket,id=qmp,path=\(qemuEscape(qmpSocket)),server=on,wait=off"]
            argv += ["-mon", "chardev=qmp,mode=control"]
        }
        var hubID = 0
        for (nic, slot) in zip(nics, nicSlots()) {
            argv += ["-netdev", nic.netdevValue(hubID: hubID), "-device", nic.deviceValue(slot: slot)]
            if case .unconnected = nic.backend { hubID += 1 }
        }
        var diskSlot = Self.firstDiskSlot
        for (index, drive) in drives.enumerated() {
            let readOnly = drive.readOnly || drive.kind == .cdrom ? ",readonly=on" : ""
            switch drive.kind {
            case .disk:
                argv += ["-drive", "file=\(qemuEscape(drive.path)),format=\(drive.format),if=none,id=drive\(index)\(readOnly)"]
                argv += ["-device", "virtio-blk-pci,drive=drive\(index),addr=\(hexSlot(diskSlot))"]
                diskSlot += 1
            case .cdrom:
                argv += ["-drive", "file=\(qemuEscape(drive.path)),format=raw,if=none,id=drive\(index),media=cdrom\(readOnly)"]
                argv += ["-device", "ide-cd,drive=drive\(index)"]
            }
        }
        return argv + extraArguments
    }

    private func validate() throws(VMError) {
        if kernel == nil && firmware == nil && drives.isEmpty {
            throw .invalidCommand("nothing to boot: set a kernel, firmware or a drive")
        }
        if hypervisor != nil && (kernel == nil || initrd == nil) {
            throw .invalidCommand("a hypervisor boot needs the kernel and initrd it starts as its first domain")
        }
        if kernel == nil && (initrd != nil || append != nil) {
            throw .invalidCommand("an initrd or kernel command line needs a kernel")
        }
        if memoryMiB < 16 { throw .invalidCommand("memory \(memoryMiB) MiB is below 16 MiB") }
        if !(1...255).contains(cpus) { throw .invalidCommand("\(cpus) CPUs is outside 1…255") }
        if let name, name.contains(",") || name.isEmpty { throw .invalidCommand("VM name \"\(name)\" must be non-empty without ','") }
        var seenIDs: Set<String> = ["console", "qmp"]
        var seenSlots: Set<Int> = []
        let disks = drives.filter { $0.kind == .disk }.count
        let diskSlots = Set(Self.firstDiskSlot..<(Self.firstDiskSlot + disks))
        if disks > 0, Self.firstDiskSlot + disks - 1 > Self.slotRange.upperBound {
            throw .invalidCommand("\(disks) disks do not fit in PCI slots \(hexSlot(Self.firstDiskSlot))…")
        }
        for (nic, slot) in zip(nics, nicSlots()) {
            if let problem = nic.problem() { throw .invalidCommand(problem) }
            if !seenIDs.insert(nic.id).inserted { throw .invalidCommand("NIC id \"\(nic.id)\" is used twice") }
            if !Self.slotRange.contains(slot) {
                throw .invalidCommand("NIC \(nic.id): PCI slot \(hexSlot(slot)) is outside \(hexSlot(Self.slotRange.lowerBound))…\(hexSlot(Self.slotRange.upperBound))")
            }
            if !seenSlots.insert(slot).inserted || diskSlots.contains(slot) {
                throw .invalidCommand("NIC \(nic.id): PCI slot \(hexSlot(slot)) is already taken")
            }
        }
        for drive in drives where drive.kind == .disk && !["raw", "qcow2"].contains(drive.format) {
            throw .invalidCommand("drive \(drive.path): format \"\(drive.format)\" is not raw or qcow2")
        }
    }
}

/// How QEMU runs guest code.
public enum Accelerator: String, Sendable, Codable, CaseIterable {
    /// Hardware virtualisation through /dev/kvm, with the host's CPU model.
    case kvm
    /// QEMU's software emulator, `-cpu max` (which also gives the guest RDRAND, so the kernel does not stall
    /// waiting for entropy).
    case tcg

    /// `-accel … -cpu …`.
    public var qemuArguments: [String] {
        switch self {
        case .kvm: return ["-accel", "kvm", "-cpu", "host"]
        // Under TCG the guest gets the x86-64 baseline plus RDRAND (so random.trust_cpu seeds the kernel's RNG at
        // once), not `max`: every CPU feature the guest sees is one TCG emulates, and with `max` the kernel and
        // glibc pick paths (XSAVE of AVX-512 state, 5-level paging, AVX string functions) that cost more to
        // emulate. Measured on the router under TCG: QEMU CPU to reach /init and from /init to READY both ~20%
        // lower. `--qemu-arg=-cpu --qemu-arg=max` restores it (the last -cpu wins).
        case .tcg: return ["-accel", "tcg", "-cpu", "qemu64,+rdrand"]
        }
    }

    /// The vCPUs `kiln boot` and `kiln test` give a VM unless told otherwise. Under KVM two, so kiln-init's module
    /// loaders and a data-plane service's threads run in parallel. Under TCG one: a second vCPU needs the kernel's
    /// ACPI interrupt setup, whose AML (interpreted once per PCI interrupt link) costs more under TCG than the
    /// second CPU gains (measured on the router: virtio_pci's load 34 ms → 330 ms, READY later).
    public var defaultCPUs: Int { self == .kvm ? 2 : 1 }

    /// Kernel arguments the harness adds to the image's own command line for a direct kernel boot. Under TCG with
    /// one vCPU, `acpi=noirq`: no ACPI PCI interrupt-link AML when virtio_pci enables the NICs (they interrupt
    /// through MSI-X); measured under TCG, virtio_pci's load 926 ms → 34 ms. It also turns SMP off, which is why
    /// it is not in the image's own command line (a deployed appliance keeps all its vCPUs) and not added when a
    /// TCG VM is given more than one.
    public func kernelArguments(cpus: Int) -> [String] {
        self == .tcg && cpus == 1 ? ["acpi=noirq"] : []
    }

    /// Appends `kernelArguments(cpus:)` to an image's command line.
    public func commandLine(_ cmdline: String, cpus: Int) -> String {
        ([cmdline] + kernelArguments(cpus: cpus)).filter { !$0.isEmpty }.joined(separator: " ")
    }

    /// A sensible `KILN_TIMEOUT_SCALE` when none is set: TCG runs the guest several times slower.
    public var suggestedTimeoutScale: Double { self == .kvm ? 1 : 3 }
}

/// What the user asked for (`--accel auto|kvm|tcg`).
public enum AcceleratorRequest: String, Sendable, Codable, CaseIterable {
    /// Probe KVM (verdict cached per host), fall back to TCG.
    case auto
    /// Use KVM without probing.
    case kvm
    /// Use TCG without probing.
    case tcg
}

/// A cached or fresh probe verdict and why it was reached.
public struct AcceleratorVerdict: Sendable, Equatable, Codable {
    public var accelerator: Accelerator
    /// Why: "kernel printed its first line after 0.4 s", "QEMU killed by signal 6: …", "/dev/kvm: Permission denied".
    public var reason: String
    /// True when it came from the cache file rather than a boot just now.
    public var cached: Bool

    public init(accelerator: Accelerator, reason: String, cached: Bool = false) {
        self.accelerator = accelerator
        self.reason = reason
        self.cached = cached
    }
}

import KilnConfig

/// `Images/<name>.yaml`: what every appliance on this base starts from — the distribution, the kernel
/// package and command line, the runtime packages kiln-init needs, the module set and the output formats.
public struct BaseImage: Decodable, Sendable {
    public var apiVersion: String
    public var name: String
    public var distribution: String
    public var architecture: String?
    public var kernel: KernelSpec
    /// Packages whose files may be needed in the image (their ELF libraries are picked by closure).
    public var packages: [String]
    /// Modules every platform loads.
    public var modules: [String]
    /// Modules only one platform loads (its NIC and disk drivers): the image carries both sets and kiln-init
    /// loads the set of the hypervisor it finds itself on.
    public var platformModules: PlatformModules?
    public var formats: [ImageFormat]?
    public var compression: CompressionSpec?

    /// The kernel package and how to boot it.
    public struct KernelSpec: Decodable, Sendable {
        public var package: String
        public var cmdline: String
        /// `strip` removes the distribution's signature from each module put in the image (default `keep`).
        public var moduleSignatures: ModuleSignatures?
        /// `strip` resolves each module's ftrace call sites at build time (default `keep`).
        public var moduleFtrace: ModuleFtrace?
    }

    /// What happens to the signatures appended to the kernel's modules. The kernel checks a signature on every
    /// load when one is present, and without CPU-specific hashing that dominates the boot under emulation;
    /// stripped modules load without the check (the kernel notes an unsigned module once, as a taint flag)
    /// but are refused where module signatures are enforced (`module.sig_enforce`, Secure Boot lockdown).
    public enum ModuleSignatures: String, Decodable, Sendable {
        case keep, strip
    }

    /// What happens to the ftrace call sites in the kernel's modules. The kernel turns each one into a NOP on every
    /// load, after looking it up among the module's symbols, which was the largest part of loading the router's
    /// modules under emulation; `strip` makes those NOPs at build time, and ftrace then cannot trace the modules'
    /// functions (tracing the core kernel is unaffected).
    public enum ModuleFtrace: String, Decodable, Sendable {
        case keep, strip
    }

    /// `kvm:` (virtio machines: QEMU, KVM, libvirt) and `xen:` (Xen domains) module lists.
    public struct PlatformModules: Decodable, Sendable {
        public var kvm: [String]?
        public var xen: [String]?
        public subscript(platform: Platform) -> [String] {
            switch platform {
            case .kvm: kvm ?? []
            case .xen: xen ?? []
            }
        }
    }

    /// zstd level for the initramfs layers.
    public struct CompressionSpec: Decodable, Sendable {
        public var level: Int?
    }
}

/// Output formats a base can produce.
public enum ImageFormat: String, Decodable, Sendable, CaseIterable {
    case kernelInitrd = "kernel-initrd"
    case raw, qcow2, iso

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        let text = try c.decode(String.self)
        guard let f = ImageFormat(rawValue: text) else {
            let hint = suggestion(for: text, among: ImageFormat.allCases.map(\.rawValue)).map { " (did you mean '\($0)'?)" } ?? ""
            throw DecodingError.dataCorruptedError(in: c, debugDescription:
                "unknown format '\(text)'\(hint); expected one of: \(ImageFormat.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        self = f
    }
}

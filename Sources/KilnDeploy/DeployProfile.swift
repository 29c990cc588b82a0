import Foundation
import KilnManifest

/// A deploy profile (`<appliance>.deploy.yaml`): where and how one appliance image runs on a hypervisor host.
///
/// The image says what the appliance is (kernel, initramfs, command line, NIC names and MACs); the profile says
/// what the host gives it: memory, vCPUs, which bridge, network or SR-IOV virtual function backs each NIC, the
/// serial console and the boot mode. One profile serves both `kiln deploy libvirt` and `kiln deploy xen`.
///
/// ```yaml
/// name: edge-router-1          # domain name; the image name when absent
/// memory: 256                  # MiB
/// vcpus: 2
/// boot: direct                 # direct (kernel + initrd + cmdline) or uefi (the raw/qcow2 disk image)
/// nics:
///   wan: { bridge: br-wan, queues: 2 }
///   lan: { network: branch-lan }
///   lan2: { hostdev: "0000:03:10.1", vlan: 10 }   # SR-IOV VF passthrough
/// libvirt: { type: kvm, pool: default, console: file }
/// xen: { directory: /var/lib/kiln }
/// ```
public struct DeployProfile: Decodable, Sendable {
    public var name: String?
    public var memory: Int
    public var vcpus: Int
    public var boot: BootMode
    /// Keyed by the appliance's interface name; each must be one of the image's NICs.
    public var nics: OrderedMap<NICBacking>
    public var libvirt: LibvirtSettings
    public var xen: XenSettings

    public init(name: String? = nil, memory: Int = 256, vcpus: Int = 1, boot: BootMode = .direct,
                nics: [(String, NICBacking)] = [], libvirt: LibvirtSettings = .init(), xen: XenSettings = .init()) {
        self.name = name; self.memory = memory; self.vcpus = vcpus; self.boot = boot
        self.nics = OrderedMap(nics.map { (key: $0.0, value: $0.1) }); self.libvirt = libvirt; self.xen = xen
    }

    enum CodingKeys: String, CodingKey { case name, memory, vcpus, boot, nics, libvirt, xen }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decodeIfPresent(String.self, forKey: .name)
        memory = try c.decodeIfPresent(Int.self, forKey: .memory) ?? 256
        vcpus = try c.decodeIfPresent(Int.self, forKey: .vcpus) ?? 1
        boot = try c.decodeIfPresent(BootMode.self, forKey: .boot) ?? .direct
        nics = try c.decodeIfPresent(OrderedMap<NICBacking>.self, forKey: .nics) ?? OrderedMap([])
        libvirt = try c.decodeIfPresent(LibvirtSettings.self, forKey: .libvirt) ?? .init()
        xen = try c.decodeIfPresent(XenSettings.self, forKey: .xen) ?? .init()
    }

    /// How the guest starts.
    public enum BootMode: String, Decodable, Sendable, Equatable {
        /// The hypervisor loads vmlinuz and the initramfs itself (libvirt `<kernel>`, Xen PVH).
        case direct
        /// OVMF boots the raw or qcow2 disk's unified kernel image.
        case uefi
    }

    /// What backs one guest NIC on the host.
    public struct NICBacking: Decodable, Sendable, Equatable {
        /// A host bridge (libvirt `type='bridge'`, Xen `bridge=`).
        public var bridge: String?
        /// A libvirt network.
        public var network: String?
        /// A plain TAP with this name in no bridge (libvirt `type='ethernet'`); for tests and custom wiring.
        public var tap: String?
        /// An SR-IOV virtual function's PCI address, `DDDD:BB:SS.F`, passed through to the guest.
        public var hostdev: String?
        /// 802.1Q tag the host applies to a VF.
        public var vlan: Int?
        /// virtio-net queue pairs (multiqueue); 1 or absent means single queue.
        public var queues: Int?

        public init(bridge: String? = nil, network: String? = nil, tap: String? = nil, hostdev: String? = nil,
                    vlan: Int? = nil, queues: Int? = nil) {
            self.bridge = bridge; self.network = network; self.tap = tap; self.hostdev = hostdev
            self.vlan = vlan; self.queues = queues
        }
    }

    /// libvirt specifics.
    public struct LibvirtSettings: Decodable, Sendable, Equatable {
        /// `kvm` on real hosts; `qemu` (TCG) where KVM is unavailable.
        public var type: String
        public var machine: String
        /// Storage pool the artifacts are uploaded into (a directory pool).
        public var pool: String
        /// `file` (in the storage pool, readable remotely through it) or `pty`.
        public var console: String
        /// The QEMU binary on the host; libvirt picks one when absent.
        public var emulator: String?

        public init(type: String = "kvm", machine: String = "q35", pool: String = "default", console: String = "file",
                    emulator: String? = nil) {
            self.type = type; self.machine = machine; self.pool = pool; self.console = console; self.emulator = emulator
        }

        enum CodingKeys: String, CodingKey { case type, machine, pool, console, emulator }
        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            self.init(type: try c.decodeIfPresent(String.self, forKey: .type) ?? "kvm",
                      machine: try c.decodeIfPresent(String.self, forKey: .machine) ?? "q35",
                      pool: try c.decodeIfPresent(String.self, forKey: .pool) ?? "default",
                      console: try c.decodeIfPresent(String.self, forKey: .console) ?? "file",
                      emulator: try c.decodeIfPresent(String.self, forKey: .emulator))
        }
    }

    /// Xen specifics.
    public struct XenSettings: Decodable, Sendable, Equatable {
        /// Where the kernel and initramfs are copied on the Xen host.
        public var directory: String
        /// The guest type of a direct boot: `pv` (the default: paravirtualised, needs neither VT-x/AMD-V nor nested
        /// paging, so it runs on every Xen host, nested ones included) or `pvh` (needs HVM support and HAP or
        /// shadow paging in the hypervisor; Debian's Xen 4.17 has no shadow paging).
        public var type: String
        /// Where the host's xenconsoled logs guest consoles (`guest-<domain>.log`), read for READY.
        public var consoleLogDirectory: String
        public init(directory: String = "/var/lib/kiln", type: String = "pv", consoleLogDirectory: String = "/var/log/xen/console") {
            self.directory = directory; self.type = type; self.consoleLogDirectory = consoleLogDirectory
        }
        enum CodingKeys: String, CodingKey { case directory, type, consoleLogDirectory }
        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            self.init(directory: try c.decodeIfPresent(String.self, forKey: .directory) ?? "/var/lib/kiln",
                      type: try c.decodeIfPresent(String.self, forKey: .type) ?? "pv",
                      consoleLogDirectory: try c.decodeIfPresent(String.self, forKey: .consoleLogDirectory) ?? "/var/log/xen/console")
        }
    }
}

extension DeployProfile {
    /// Reads a profile, reporting problems at `file:line:col`.
    public static func load(_ path: String) throws -> DeployProfile {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw DeployError.unreadable(path: path)
        }
        let (profile, locator) = try ManifestDecoder(file: path).decodeLocated(DeployProfile.self, from: text)
        if let problem = profile.problems().first {
            throw locator.error(problem.path, problem.message)
        }
        return profile
    }

    /// Checks that need more than one field; each names the setting at fault.
    public func problems() -> [(path: [any CodingKey], message: String)] {
        var out: [(path: [any CodingKey], message: String)] = []
        if memory < 32 { out.append(([CodingKeys.memory], "at least 32 MiB")) }
        if vcpus < 1 || vcpus > 64 { out.append(([CodingKeys.vcpus], "between 1 and 64")) }
        for (name, nic) in nics.entries {
            let path: [any CodingKey] = [CodingKeys.nics, AnyKey(name)]
            let kinds = [nic.bridge, nic.network, nic.tap, nic.hostdev].compactMap { $0 }
            if kinds.count != 1 { out.append((path, "exactly one of bridge, network, tap, hostdev")) }
            if let q = nic.queues, q < 1 || q > 16 { out.append((path + [AnyKey("queues")], "between 1 and 16")) }
            if let v = nic.vlan, v < 1 || v > 4094 { out.append((path + [AnyKey("vlan")], "a VLAN id 1-4094")) }
            if nic.vlan != nil && nic.hostdev == nil { out.append((path + [AnyKey("vlan")], "only for hostdev NICs")) }
            if let h = nic.hostdev, PCIAddress(h) == nil { out.append((path + [AnyKey("hostdev")], "'\(h)' is not a PCI address DDDD:BB:SS.F")) }
        }
        if !["kvm", "qemu"].contains(libvirt.type) { out.append(([CodingKeys.libvirt, AnyKey("type")], "kvm or qemu")) }
        if !["file", "pty"].contains(libvirt.console) { out.append(([CodingKeys.libvirt, AnyKey("console")], "file or pty")) }
        if !["pv", "pvh"].contains(xen.type) { out.append(([CodingKeys.xen, AnyKey("type")], "pv or pvh")) }
        for (key, dir) in [("directory", xen.directory), ("consoleLogDirectory", xen.consoleLogDirectory)]
        where !dir.hasPrefix("/") || dir.contains(where: { "'\"\\ \n$`".contains($0) }) {
            out.append(([CodingKeys.xen, AnyKey(key)], "an absolute path without quotes, spaces or shell characters"))
        }
        return out
    }
}

/// A coding key made from text, for error paths into maps.
struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ s: String) { stringValue = s }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// A PCI address `DDDD:BB:SS.F` (domain optional), as SR-IOV VFs are named in sysfs.
public struct PCIAddress: Sendable, Equatable, CustomStringConvertible {
    public var domain: Int, bus: Int, slot: Int, function: Int

    public init?(_ text: String) {
        var parts = text.split(separator: ":").map(String.init)
        if parts.count == 2 { parts.insert("0000", at: 0) }
        guard parts.count == 3 else { return nil }
        let sf = parts[2].split(separator: ".").map(String.init)
        guard sf.count == 2, let d = Int(parts[0], radix: 16), let b = Int(parts[1], radix: 16),
              let s = Int(sf[0], radix: 16), let f = Int(sf[1], radix: 16),
              d <= 0xffff, b <= 0xff, s <= 0x1f, f <= 7 else { return nil }
        domain = d; bus = b; slot = s; function = f
    }

    public var description: String {
        hex(domain, 4) + ":" + hex(bus, 2) + ":" + hex(slot, 2) + "." + String(function)
    }
}

func hex(_ v: Int, _ width: Int) -> String {
    let s = String(v, radix: 16)
    return String(repeating: "0", count: max(0, width - s.count)) + s
}

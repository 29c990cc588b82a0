/// Everything a libvirt domain definition needs, resolved: paths are on the hypervisor host.
///
/// Built from an image and a profile by `LibvirtDomain.plan`; turned into XML by `xml`. Both are pure, so the
/// XML is golden-tested and `kiln deploy libvirt --dry-run` prints exactly what would be defined.
public struct LibvirtDomain: Sendable, Equatable {
    /// How the guest boots.
    public enum Boot: Sendable, Equatable {
        case direct(kernel: String, initrd: String, cmdline: String)
        /// OVMF (libvirt firmware auto-selection) booting a disk holding a unified kernel image.
        case uefi(disk: String, format: String)
    }

    /// One virtio NIC (or a passed-through VF) in guest order.
    public struct NIC: Sendable, Equatable {
        public var name: String
        public var mac: String
        public var backing: DeployProfile.NICBacking
    }

    /// Where the first serial port goes.
    public enum Console: Sendable, Equatable {
        case file(String)
        case pty
    }

    /// An artifact recorded in the domain's `<metadata>`: the current image and the one an upgrade replaced.
    public struct Artifact: Sendable, Equatable {
        public var role: String
        public var file: String
        public var sha256: String
        public var volume: String
        public init(role: String, file: String, sha256: String, volume: String) {
            self.role = role; self.file = file; self.sha256 = sha256; self.volume = volume
        }
    }

    public var name: String
    /// Kept across an upgrade: libvirt redefines a domain only under the UUID it already has.
    public var uuid: String?
    public var type: String
    public var machine: String
    public var memoryMiB: Int
    public var vcpus: Int
    public var boot: Boot
    public var nics: [NIC]
    public var console: Console
    public var emulator: String?
    public var image: String
    public var artifacts: [Artifact]

    /// The XML namespace of Kiln's `<metadata>` element.
    public static let metadataNamespace = "urn:kiln:deploy:1"

    /// Resolves a profile against an image: NICs matched by name, MACs from the image.
    public static func plan(image: DeployImage, profile: DeployProfile, boot: Boot, console: Console,
                            artifacts: [Artifact]) throws -> LibvirtDomain {
        let name = profile.name ?? image.info.name
        return LibvirtDomain(
            name: name, uuid: nil, type: profile.libvirt.type, machine: profile.libvirt.machine, memoryMiB: profile.memory,
            vcpus: profile.vcpus, boot: boot, nics: try matchNICs(image: image, profile: profile, domain: name),
            console: console, emulator: profile.libvirt.emulator, image: image.info.name, artifacts: artifacts)
    }

    static func matchNICs(image: DeployImage, profile: DeployProfile, domain: String) throws -> [NIC] {
        let guest = image.nics(domain: domain)
        let known = Set(guest.map(\.name))
        if let extra = profile.nics.keys.first(where: { !known.contains($0) }) {
            throw DeployError.nicMismatch("profile nics.\(extra): the image \(image.info.name) has no NIC '\(extra)' (it has \(guest.map(\.name).joined(separator: ", ")))")
        }
        return try guest.map { nic in
            guard let backing = profile.nics[nic.name] else {
                throw DeployError.nicMismatch("profile nics: no backing for the image's NIC '\(nic.name)'; add nics.\(nic.name): { bridge: ... }")
            }
            return NIC(name: nic.name, mac: nic.mac, backing: backing)
        }
    }

    /// The domain XML, indented two spaces, attributes in a fixed order.
    public var xml: String {
        var x = XMLLines()
        x.open("domain type='\(esc(type))'")
        x.leaf("name", name)
        if let uuid { x.leaf("uuid", uuid) }
        x.leaf("memory unit='MiB'", String(memoryMiB))
        x.leaf("vcpu placement='static'", String(vcpus))
        x.open("metadata")
        x.open("kiln:image xmlns:kiln='\(Self.metadataNamespace)' name='\(esc(image))'")
        for a in artifacts {
            x.line("<kiln:artifact role='\(esc(a.role))' file='\(esc(a.file))' sha256='\(esc(a.sha256))' volume='\(esc(a.volume))'/>")
        }
        x.close("kiln:image")
        x.close("metadata")
        switch boot {
        case let .direct(kernel, initrd, cmdline):
            x.open("os")
            x.leaf("type arch='x86_64' machine='\(esc(machine))'", "hvm")
            x.leaf("kernel", kernel)
            x.leaf("initrd", initrd)
            x.leaf("cmdline", cmdline)
            x.close("os")
        case .uefi:
            x.open("os firmware='efi'")
            x.leaf("type arch='x86_64' machine='\(esc(machine))'", "hvm")
            x.open("firmware")
            x.line("<feature enabled='no' name='secure-boot'/>")
            x.close("firmware")
            x.line("<boot dev='hd'/>")
            x.close("os")
        }
        x.open("features")
        x.line("<acpi/>")
        x.line("<apic/>")
        x.close("features")
        // TCG has no host CPU to pass through; 'maximum' also avoids the guest's wait for a random seed.
        x.line(type == "kvm" ? "<cpu mode='host-passthrough'/>" : "<cpu mode='maximum'/>")
        x.leaf("on_poweroff", "destroy")
        x.leaf("on_reboot", "restart")
        x.leaf("on_crash", "restart")
        x.open("devices")
        if let emulator { x.leaf("emulator", emulator) }
        if case let .uefi(disk, format) = boot {
            x.open("disk type='file' device='disk'")
            x.line("<driver name='qemu' type='\(esc(format))'/>")
            x.line("<source file='\(esc(disk))'/>")
            x.line("<target dev='vda' bus='virtio'/>")
            x.close("disk")
        }
        for nic in nics { interface(nic, into: &x) }
        switch console {
        case let .file(path):
            x.open("serial type='file'")
            x.line("<source path='\(esc(path))' append='on'/>")
            x.line("<target port='0'/>")
            x.close("serial")
        case .pty:
            x.open("serial type='pty'")
            x.line("<target port='0'/>")
            x.close("serial")
        }
        x.open("console type='pty'")
        x.line("<target type='serial' port='0'/>")
        x.close("console")
        x.line("<memballoon model='none'/>")
        x.open("rng model='virtio'")
        x.leaf("backend model='random'", "/dev/urandom")
        x.close("rng")
        x.close("devices")
        x.close("domain")
        return x.text
    }

    private func interface(_ nic: NIC, into x: inout XMLLines) {
        let b = nic.backing
        if let hostdev = b.hostdev, let pci = PCIAddress(hostdev) {
            // An SR-IOV VF: libvirt sets the MAC and VLAN on the VF through its PF, then passes it through.
            x.open("interface type='hostdev' managed='yes'")
            x.line("<mac address='\(esc(nic.mac))'/>")
            x.open("source")
            x.line("<address type='pci' domain='0x\(hex(pci.domain, 4))' bus='0x\(hex(pci.bus, 2))' slot='0x\(hex(pci.slot, 2))' function='0x\(pci.function)'/>")
            x.close("source")
            if let vlan = b.vlan {
                x.open("vlan")
                x.line("<tag id='\(vlan)'/>")
                x.close("vlan")
            }
            x.close("interface")
            return
        }
        if let bridge = b.bridge {
            x.open("interface type='bridge'")
            x.line("<source bridge='\(esc(bridge))'/>")
        } else if let network = b.network {
            x.open("interface type='network'")
            x.line("<source network='\(esc(network))'/>")
        } else {
            x.open("interface type='ethernet'")
        }
        x.line("<mac address='\(esc(nic.mac))'/>")
        if let tap = b.tap { x.line("<target dev='\(esc(tap))' managed='yes'/>") }
        x.line("<model type='virtio'/>")
        if let queues = b.queues, queues > 1 {
            // vhost-net needs KVM's host kernel side; under TCG the userspace backend does multiqueue.
            x.line("<driver name='\(type == "kvm" ? "vhost" : "qemu")' queues='\(queues)'/>")
        }
        x.close("interface")
    }
}

/// An indenting writer for the small, fixed XML shapes Kiln emits.
struct XMLLines {
    private(set) var text = ""
    private var depth = 0

    mutating func line(_ s: String) { text += String(repeating: "  ", count: depth) + s + "\n" }
    mutating func open(_ tag: String) { line("<\(tag)>"); depth += 1 }
    mutating func close(_ name: String) { depth -= 1; line("</\(name)>") }
    mutating func leaf(_ tag: String, _ value: String) {
        let name = tag.split(separator: " ").first.map(String.init) ?? tag
        line("<\(tag)>\(esc(value))</\(name)>")
    }
}

/// XML escaping for text and single-quoted attribute values.
func esc(_ s: String) -> String {
    var out = ""
    for c in s {
        switch c {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "'": out += "&apos;"
        case "\"": out += "&quot;"
        default: out.append(c)
        }
    }
    return out
}

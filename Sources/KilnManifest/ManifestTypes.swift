import KilnConfig
import KilnDHCP
import KilnFirewall
import KilnSwitch

/// `Appliances/<name>.yaml` as written: the schema users edit. `ApplianceSpec` is its validated form.
public struct ApplianceManifest: Decodable, Sendable {
    public var apiVersion: String
    public var name: String
    public var base: String
    public var hostname: String?
    public var interfaces: OrderedMap<InterfaceSpec>?
    public var bridges: OrderedMap<BridgeSpec>?
    public var routes: [RouteSpec]?
    public var sysctl: OrderedMap<ScalarText>?
    public var packages: [String]?
    public var modules: [String]?
    public var files: [FileSpec]?
    public var services: OrderedMap<ServiceSpec>?
    public var tuntap: OrderedMap<TunTapSpec>?
    public var router: RouterSpec?
    public var firewall: FirewallSpec?
    /// The fast-path switch: NIC ports, an optional internal TAP port, VLANs, mirrors and flow export.
    public var `switch`: SwitchSpec?
    public var vpn: VPNSection?
    public var wanopt: WANOptSection?
    /// A Xen host: the hypervisor this image boots under as dom0, and the toolstack kiln-init runs.
    public var xen: XenSection?
}

/// `xen:`: the appliance is a Xen host. `hypervisor` is the Debian package whose `/boot/xen-*.gz` becomes
/// `out/<name>/xen` (the multiboot kernel QEMU or a boot loader starts, with this image's kernel and initramfs
/// as dom0's); `tools` is the package of xl, xenstored and xenconsoled; `cmdline` is added to the hypervisor's.
public struct XenSection: Decodable, Sendable {
    public var hypervisor: String
    public var tools: String
    public var cmdline: String?
}

/// A NIC of the appliance, matched by MAC or by PCI order, with optional 802.1Q subinterfaces.
public struct InterfaceSpec: Decodable, Sendable {
    public var mac: MACAddress?
    /// 0-based position among the virtio NICs in PCI order; defaults to the interface's position in the manifest.
    public var pci: Int?
    public var addresses: [CIDR]?
    public var mtu: Int?
    public var vlans: OrderedMap<VLANSpec>?
}

/// An 802.1Q subinterface; its key in `vlans` is the VLAN id (1–4094). Named `<parent>.<id>`.
public struct VLANSpec: Decodable, Sendable {
    public var addresses: [CIDR]?
    public var mtu: Int?
}

/// A software bridge over member interfaces.
public struct BridgeSpec: Decodable, Sendable {
    public var members: [String]
    public var addresses: [CIDR]?
}

/// `to: default` or a prefix; `via` a gateway, `dev` an interface, `metric` the route priority.
public struct RouteSpec: Decodable, Sendable {
    public var to: RouteDestination
    public var via: IPAddress?
    public var dev: String?
    public var metric: Int?
}

/// `default` (0.0.0.0/0), `default6` (::/0) or a network prefix.
public struct RouteDestination: Decodable, Sendable, Equatable {
    public var cidr: CIDR
    public init(from decoder: Decoder) throws {
        cidr = try decodeText(decoder) { text throws(ValueError) in
            switch text {
            case "default": return try CIDR("0.0.0.0/0")
            case "default6": return try CIDR("::/0")
            default:
                let c = try CIDR(text)
                guard c.isNetwork else { throw ValueError("route destination '\(text)' has host bits set; did you mean \(c.network)/\(c.prefixLength)?") }
                return c
            }
        }
    }
}

/// A file placed in the image: inline `content` or a `source` path relative to the manifest.
public struct FileSpec: Decodable, Sendable {
    public var path: String
    public var content: String?
    public var source: String?
    /// A symbolic link's target (`/bin/sh` → `busybox`).
    public var link: String?
    public var mode: String?
}

/// A supervised process started by kiln-init.
public struct ServiceSpec: Decodable, Sendable {
    public var run: [String]
    public var env: OrderedMap<ScalarText>?
    public var restart: GuestService.Restart?
}

/// A TUN or TAP device created and owned by the runtime.
public struct TunTapSpec: Decodable, Sendable {
    public var mode: GuestTunTap.Mode
    public var addresses: [CIDR]?
}

/// The router role: forwarding and source NAT on uplinks.
public struct RouterSpec: Decodable, Sendable {
    /// IPv4/IPv6 forwarding; defaults to true when the section is present.
    public var forwarding: Bool?
    /// Interfaces whose outgoing traffic is masqueraded to the interface address.
    public var masquerade: [String]?
    /// DHCPv4 pools per interface or VLAN subinterface, served by Kiln's DHCP server.
    public var dhcp: DHCPSection?
}

/// The VPN role: one WireGuard interface run by `/sbin/kiln-vpn` over a TUN device the runtime creates.
public struct VPNSection: Decodable, Sendable {
    /// The TUN interface's name (default `vpn0`).
    public var interface: String?
    /// Addresses of the tunnel interface.
    public var addresses: [CIDR]
    public var listenPort: Int
    public var privateKey: SecretSource
    public var peers: [VPNPeerSpec]
    /// The tunnel's MTU (default: the kernel's for a TUN device, 1500).
    public var mtu: Int?
    /// `wgQuick: { file: site.conf }`: everything but `interface` comes from a wg-quick file (see `WGQuickFile`).
    public var wgQuick: WGQuickReference?

    public struct WGQuickReference: Decodable, Sendable {
        public var file: String
        public init(file: String) { self.file = file }
    }

    enum CodingKeys: String, CodingKey { case interface, addresses, listenPort, privateKey, peers, mtu, wgQuick }

    public init(interface: String?, addresses: [CIDR], listenPort: Int, privateKey: SecretSource, peers: [VPNPeerSpec], mtu: Int? = nil) {
        self.interface = interface; self.addresses = addresses; self.listenPort = listenPort; self.privateKey = privateKey
        self.peers = peers; self.mtu = mtu
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        interface = try c.decodeIfPresent(String.self, forKey: .interface)
        wgQuick = try c.decodeIfPresent(WGQuickReference.self, forKey: .wgQuick)
        mtu = try c.decodeIfPresent(Int.self, forKey: .mtu)
        if wgQuick != nil {
            // Filled from the file by the loader; the keys themselves are refused beside it.
            addresses = []; listenPort = 0; privateKey = SecretSource(); peers = []
            for key in [CodingKeys.addresses, .listenPort, .privateKey, .peers, .mtu] where c.contains(key) {
                throw DecodingError.dataCorruptedError(forKey: key, in: c, debugDescription:
                    "'\(key.stringValue)' comes from the wg-quick file named by wgQuick; set it there")
            }
        } else {
            addresses = try c.decode([CIDR].self, forKey: .addresses)
            listenPort = try c.decode(Int.self, forKey: .listenPort)
            privateKey = try c.decode(SecretSource.self, forKey: .privateKey)
            peers = try c.decode([VPNPeerSpec].self, forKey: .peers)
        }
    }
}

/// One peer: its public key, the prefixes routed to it (cryptokey routing), where to reach it.
public struct VPNPeerSpec: Decodable, Sendable {
    public init(publicKey: String, presharedKey: SecretSource?, allowedIPs: [CIDR], endpoint: String?, persistentKeepalive: Int?) {
        self.publicKey = publicKey; self.presharedKey = presharedKey; self.allowedIPs = allowedIPs
        self.endpoint = endpoint; self.persistentKeepalive = persistentKeepalive
    }
    public var publicKey: String
    public var presharedKey: SecretSource?
    public var allowedIPs: [CIDR]
    /// `a.b.c.d:port` or `[v6]:port`; without one the peer is reached once it has sent a valid packet.
    public var endpoint: String?
    /// Seconds between keepalives when idle (0 or absent: off).
    public var persistentKeepalive: Int?
}

/// A secret read at build time: `{ file: PATH }` (relative to the manifest) or `{ env: NAME }`. Its value is
/// never printed: errors say where it came from, not what it was.
public struct SecretSource: Decodable, Sendable {
    public var file: String?
    public var env: String?
    /// A key already read from a wg-quick file, and where (`site.conf:3`); never decoded from a manifest.
    public var imported: (text: String, origin: String)?

    enum CodingKeys: String, CodingKey { case file, env }
    public init(file: String? = nil, env: String? = nil) { self.file = file; self.env = env }
    public init(imported text: String, origin: String) { imported = (text, origin) }

    /// A key written inline is refused without repeating it: the error goes to terminals and CI logs.
    public init(from decoder: Decoder) throws {
        guard let container = try? decoder.container(keyedBy: CodingKeys.self) else {
            throw DecodingError.typeMismatch(SecretSource.self, .init(codingPath: decoder.codingPath, debugDescription:
                "expected { file: PATH } or { env: NAME }, found a value written inline (not repeated here: keys do not belong in a manifest)"))
        }
        file = try container.decodeIfPresent(String.self, forKey: .file)
        env = try container.decodeIfPresent(String.self, forKey: .env)
    }
}

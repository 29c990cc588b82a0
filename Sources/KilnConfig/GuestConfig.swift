/// The compiled configuration kiln-init reads from `/etc/kiln/config.json`.
/// The builder writes it from the validated manifest; the guest never parses YAML.
public struct GuestConfig: Codable, Sendable, Equatable {
    public static let path = "/etc/kiln/config.json"
    public static let currentVersion = 1

    public var version: Int
    public var name: String
    public var hostname: String
    /// `uname -r` of the kernel in the image. The modules to load are in `ModulePlan.path`.
    public var kernelRelease: String
    public var interfaces: [GuestInterface]
    public var vlans: [GuestVLAN]
    public var bridges: [GuestBridge]
    public var routes: [GuestRoute]
    public var sysctl: [GuestSysctl]
    public var tuntap: [GuestTunTap]
    public var firewall: GuestFirewall?
    public var services: [GuestService]

    public init(
        name: String, hostname: String, kernelRelease: String, interfaces: [GuestInterface] = [],
        vlans: [GuestVLAN] = [], bridges: [GuestBridge] = [], routes: [GuestRoute] = [], sysctl: [GuestSysctl] = [],
        tuntap: [GuestTunTap] = [], firewall: GuestFirewall? = nil, services: [GuestService] = []
    ) {
        version = GuestConfig.currentVersion
        self.name = name; self.hostname = hostname; self.kernelRelease = kernelRelease; 
        self.interfaces = interfaces; self.vlans = vlans; self.bridges = bridges; self.routes = routes
        self.sysctl = sysctl; self.tuntap = tuntap; self.firewall = firewall; self.services = services
    }
}

/// A NIC, found by MAC address or, failing that, by its position in PCI order, and renamed to `name`.
public struct GuestInterface: Codable, Sendable, Equatable {
    public var name: InterfaceName
    public var mac: MACAddress?
    /// 0-based index among the virtio NICs sorted by PCI address.
    public var pciIndex: Int?
    public var addresses: [CIDR]
    public var mtu: Int?
    public init(name: InterfaceName, mac: MACAddress?, pciIndex: Int?, addresses: [CIDR], mtu: Int?) {
        self.name = name; self.mac = mac; self.pciIndex = pciIndex; self.addresses = addresses; self.mtu = mtu
    }
}

/// An 802.1Q subinterface `parent.id`.
public struct GuestVLAN: Codable, Sendable, Equatable {
    public var name: InterfaceName
    public var parent: InterfaceName
    public var id: Int
    public var addresses: [CIDR]
    public init(name: InterfaceName, parent: InterfaceName, id: Int, addresses: [CIDR]) {
        self.name = name; self.parent = parent; self.id = id; self.addresses = addresses
    }
}

/// A Linux bridge with its member ports.
public struct GuestBridge: Codable, Sendable, Equatable {
    public var name: InterfaceName
    public var members: [InterfaceName]
    public var addresses: [CIDR]
    public init(name: InterfaceName, members: [InterfaceName], addresses: [CIDR]) {
        self.name = name; self.members = members; self.addresses = addresses
    }
}

/// A static route; `to` 0.0.0.0/0 or ::/0 is the default route.
public struct GuestRoute: Codable, Sendable, Equatable {
    public var to: CIDR
    public var via: IPAddress?
    public var dev: InterfaceName?
    public var metric: Int?
    public init(to: CIDR, via: IPAddress?, dev: InterfaceName?, metric: Int?) {
        self.to = to; self.via = via; self.dev = dev; self.metric = metric
    }
}

/// One `/proc/sys` setting, e.g. `net.ipv4.ip_forward = 1`.
public struct GuestSysctl: Codable, Sendable, Equatable {
    public var key: String
    public var value: String
    public init(key: String, value: String) { self.key = key; self.value = value }
}

/// A TUN or TAP device the runtime creates (persistent), addresses and brings up in the `tuntap` phase.
public struct GuestTunTap: Codable, Sendable, Equatable {
    public enum Mode: String, Codable, Sendable { case tun, tap }
    public var name: InterfaceName
    public var mode: Mode
    public var addresses: [CIDR]
    /// Prefixes routed through the device once it is up (a VPN's allowed IPs).
    public var routes: [CIDR]?
    /// The service that attaches to the device (`vpn`). The runtime then lets go of its descriptor, since a
    /// single-queue TUN takes one reader; otherwise it keeps the device open for the box's lifetime.
    public var service: String?
    /// The device's MTU; the kernel's default when nil.
    public var mtu: Int?
    public init(name: InterfaceName, mode: Mode, addresses: [CIDR], routes: [CIDR]? = nil, service: String? = nil) {
        self.name = name; self.mode = mode; self.addresses = addresses; self.routes = routes; self.service = service
    }
}

/// The nftables ruleset compiled and checked at build time. kiln-init loads `bootstrap` (default drop)
/// before any NIC comes up, then replaces it with `ruleset` in one transaction.
public struct GuestFirewall: Codable, Sendable, Equatable {
    public var bootstrap: String
    public var ruleset: String
    public init(bootstrap: String, ruleset: String) { self.bootstrap = bootstrap; self.ruleset = ruleset }
}

/// A supervised process.
public struct GuestService: Codable, Sendable, Equatable {
    public enum Restart: String, Codable, Sendable { case always, onFailure = "on-failure", never }
    public var name: String
    public var argv: [String]
    public var env: [String]
    public var restart: Restart
    public init(name: String, argv: [String], env: [String] = [], restart: Restart = .always) {
        self.name = name; self.argv = argv; self.env = env; self.restart = restart
    }
}

import KilnConfig
import KilnFirewall
import KilnSwitch
import KilnWANOpt

/// A validated appliance: every name resolved, every reference checked. Invalid states are not representable
/// past `ManifestLoader.load`.
public struct ApplianceSpec: Sendable {
    public var name: String
    public var hostname: String
    public var manifestPath: String
    public var basePath: String
    public var base: BaseImage
    public var interfaces: [GuestInterface]
    public var vlans: [GuestVLAN]
    public var bridges: [GuestBridge]
    public var routes: [GuestRoute]
    public var sysctl: [GuestSysctl]
    public var tuntap: [GuestTunTap]
    public var services: [GuestService]
    public var files: [ImageFile]
    /// Debian packages: the base's runtime set plus the manifest's extras, sorted and unique.
    public var packages: [String]
    /// The manifest's own `packages:`: their programs (ELF files in bin and sbin) go into the image with
    /// their libraries, so services can run them (`wg` from wireguard-tools). The base's packages only
    /// provide libraries.
    public var programPackages: [String] = []
    /// Where each package named by the manifest or its base is written, for errors about the package itself.
    public var packageLocations: [String: SourceLocation] = [:]
    /// Kernel modules: the base's set plus the manifest's extras plus what the roles need.
    public var modules: [String]
    /// Modules only one platform loads (the base's `platformModules`), by platform.
    public var platformModules: [Platform: [String]] = [:]
    public var router: RouterSpec?
    /// The switch section, checked against the interfaces; its TAP port is also in `tuntap`.
    public var `switch`: SwitchSpec?
    /// The compiled nftables ruleset (already accepted by libnftables in a dry run), when the appliance
    /// filters or translates: a `firewall` section, or a router that masquerades.
    public var firewall: CompiledFirewall?
    /// The WAN optimizer service's config (its key is among `files`, root-only).
    public var wanopt: WANOptConfig?
    /// The VPN role (`vpn:`); its config holds resolved keys and is never printed.
    public var vpn: VPNRole?
    /// The Xen host role (`xen:`): the image is dom0 under the hypervisor it names.
    public var xen: XenHostRole?
    /// What the build proceeds with but the user should fix (a key file other users can read), at its line.
    public var warnings: [ManifestError] = []
    /// Kiln guest executables besides kiln-init this image needs (`kiln-vpn`), found beside kiln at build time
    /// and placed at `/sbin/<name>`.
    public var guestExecutables: [String] {
        vpn == nil ? [] : [VPNRole.executable]
    }

    /// Libraries the roles' services open at run time (dlopen) rather than link, placed with their closure.
    public var runtimeLibraries: [String] {
        (wanopt == nil ? [] : WANOptConfig.runtimeLibraries) + (xen?.programs ?? [])
    }

    /// Every interface name the box will have (NICs, VLANs, bridges, TUN/TAP).
    public var allInterfaceNames: [String] {
        interfaces.map(\.name.value) + vlans.map(\.name.value) + bridges.map(\.name.value) + tuntap.map(\.name.value)
    }
}

/// A file to place in the image with its bytes already read.
public struct ImageFile: Sendable, Equatable {
    public var path: String
    public var mode: UInt32
    public var contents: [UInt8]
    /// A symbolic link to this target instead of a file.
    public var linkTarget: String?
    public init(path: String, mode: UInt32, contents: [UInt8]) { self.path = path; self.mode = mode; self.contents = contents }
    public init(path: String, linkTo target: String) { self.path = path; self.mode = 0o777; self.contents = []; self.linkTarget = target }
}

/// A firewall that passed validation and libnftables' dry run, with the modules its ruleset needs.
public struct CompiledFirewall: Sendable {
    public var spec: FirewallSpec
    public var ruleset: CompiledRuleset
    public var modules: [String]
}

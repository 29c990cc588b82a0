import KilnConfig

/// What the DHCP service reads at start, `/etc/kiln/dhcp.json`: written by the builder from the manifest's
/// validated `router.dhcp` section, decoded in the guest with `KilnJSON` (no Foundation).
public struct DHCPServerConfig: Codable, Sendable, Equatable {
    public static let defaultPath = "/etc/kiln/dhcp.json"
    public static let defaultLeaseDirectory = "/var/lib/kiln/dhcp"
    public static let currentVersion = 1

    public var version: Int
    public var interfaces: [DHCPInterfaceConfig]

    public init(interfaces: [DHCPInterfaceConfig]) { version = DHCPServerConfig.currentVersion; self.interfaces = interfaces }

    /// Compiles a validated section. Throws the `validate` issues when there are any.
    public static func compile(_ section: DHCPSection, addresses: [InterfaceName: [CIDR]],
                               leaseDirectory: String = defaultLeaseDirectory) throws(DHCPConfigError) -> DHCPServerConfig {
        let issues = section.validate(addresses: addresses)
        guard issues.isEmpty else { throw DHCPConfigError(issues: issues) }
        var out: [DHCPInterfaceConfig] = []
        for seg in section.segments {
            guard let cidr = addresses[seg.interface]?.first(where: { IPv4Subnet($0) != nil }) else { continue }
            out.append(DHCPInterfaceConfig(name: seg.interface, address: cidr, spec: seg.spec,
                                           leaseFile: leaseDirectory + "/" + seg.interface.value + ".leases"))
        }
        return DHCPServerConfig(interfaces: out)
    }

    /// Reads and decodes a config file. Errors name the file and the JSON path.
    public static func load(path: String) throws(DHCPConfigError) -> DHCPServerConfig {
        let bytes: [UInt8]
        do { bytes = try readFile(path) } catch { throw DHCPConfigError(issues: [DHCPSpecIssue(path: path, message: error.description)]) }
        let config: DHCPServerConfig
        do { config = try KilnJSON.decode(DHCPServerConfig.self, from: bytes) } catch {
            throw DHCPConfigError(issues: [DHCPSpecIssue(path: path, message: "\(error)")])
        }
        guard config.version == currentVersion else {
            throw DHCPConfigError(issues: [DHCPSpecIssue(path: path, message: "version \(config.version) is not \(currentVersion); rebuild the image with this Kiln")])
        }
        return config
    }
}

/// The `validate` issues that stopped a compile, or why a config file could not be loaded.
public struct DHCPConfigError: Error, Equatable, Sendable, CustomStringConvertible {
    public var issues: [DHCPSpecIssue]
    public var description: String { issues.map(\.description).joined(separator: "\n") }
}

/// One interface the server answers on.
public struct DHCPInterfaceConfig: Codable, Sendable, Equatable {
    public var name: InterfaceName
    /// The server's address and prefix on this interface, e.g. `10.10.0.1/24`: server identifier and subnet.
    public var address: CIDR
    public var spec: DHCPSpec
    public var leaseFile: String
    /// How long an OFFER holds its address for the client (RFC 2131 §4.3.1 leaves this to the server).
    public var offerSeconds: Int
    /// How long a DECLINEd address stays out of the pool.
    public var declineSeconds: Int

    public init(name: InterfaceName, address: CIDR, spec: DHCPSpec, leaseFile: String, offerSeconds: Int = 30, declineSeconds: Int = 600) {
        self.name = name; self.address = address; self.spec = spec; self.leaseFile = leaseFile
        self.offerSeconds = offerSeconds; self.declineSeconds = declineSeconds
    }

    public var subnet: IPv4Subnet? { IPv4Subnet(address) }
}

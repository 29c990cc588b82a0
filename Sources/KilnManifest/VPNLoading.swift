import Foundation
import KilnConfig
import KilnVPN

/// The VPN role as the image needs it: kiln-vpn's configuration (keys resolved, so it is secret), the TUN
/// device the runtime creates for it and the firewall opening for its port.
public struct VPNRole: Sendable {
    /// Where the configuration goes in the image (mode 0600); `/sbin/kiln-vpn run <path>` reads it.
    public static let configDirectory = "/etc/kiln/vpn"
    public static let executable = "kiln-vpn"

    /// Holds the private and pre-shared keys: written only into the image, never printed or logged.
    public var config: VPNConfig
    public var tunnel: GuestTunTap
    public var configPath: String { VPNRole.configDirectory + "/" + tunnel.name.value + ".json" }
    public var service: GuestService {
        GuestService(name: "vpn", argv: ["/sbin/" + VPNRole.executable, "run", configPath], restart: .always)
    }
}

/// Validates the manifest's `vpn:` section and resolves its secrets. Every problem names the manifest
/// position; a key's value never appears in a message.
enum VPNLoading {
    static let defaultInterface = "vpn0"

    static func load(_ section: VPNSection, claim: (String, [String]) -> InterfaceName?, manifestDirectory: String,
                     environment: [String: String], locator: Locator, problems: inout [ManifestError],
                     warn: ([String], String) -> Void = { _, _ in }) -> VPNRole? {
        func fail(_ keys: [String], _ message: String) { problems.append(locator.error(keys.map(ManifestLoader.key), message)) }
        let before = problems.count
        let name = claim(section.interface ?? defaultInterface, section.interface == nil ? ["vpn"] : ["vpn", "interface"])
        if section.addresses.isEmpty { fail(["vpn", "addresses"], "the tunnel interface needs at least one address") }
        if !(1...65535).contains(section.listenPort) { fail(["vpn", "listenPort"], "port \(section.listenPort) is outside 1-65535") }
        let privateKey = secret(section.privateKey, keys: ["vpn", "privateKey"], manifestDirectory: manifestDirectory,
                                environment: environment, fail: fail, warn: warn)
        if section.peers.isEmpty { fail(["vpn", "peers"], "a VPN needs at least one peer") }

        var peers: [VPNConfig.Peer] = []
        var seenKeys: [String: Int] = [:]
        var seenPrefixes: [CIDR: (peer: Int, index: Int)] = [:]
        for (i, p) in section.peers.enumerated() {
            let keys = ["vpn", "peers", "\(i)"]
            let publicKey = p.publicKey.trimmingCharacters(in: .whitespaces)
            if let bytes = Base64.decode(publicKey), bytes.count == 32 {
                if let other = seenKeys[publicKey] { fail(keys + ["publicKey"], "this public key is also peer \(other)'s") }
                seenKeys[publicKey] = i
                if let own = privateKey, Base64.encode(X25519.publicKey(of: own)) == publicKey {
                    fail(keys + ["publicKey"], "this is the appliance's own public key (from vpn.privateKey)")
                }
            } else {
                fail(keys + ["publicKey"], "'\(publicKey)' is not a WireGuard public key (base64 of 32 bytes, 44 characters ending in '=')")
            }
            let psk = p.presharedKey.flatMap {
                secret($0, keys: keys + ["presharedKey"], manifestDirectory: manifestDirectory, environment: environment, fail: fail, warn: warn)
            }
            if p.allowedIPs.isEmpty { fail(keys + ["allowedIPs"], "a peer needs at least one allowed prefix (the traffic routed to it)") }
            for (j, prefix) in p.allowedIPs.enumerated() {
                if !prefix.isNetwork {
                    fail(keys + ["allowedIPs", "\(j)"], "allowed prefix '\(prefix)' has host bits set; did you mean \(prefix.network)/\(prefix.prefixLength)?")
                    continue
                }
                // The same prefix for two peers would route it to whichever came last: say so instead.
                if let other = seenPrefixes[prefix] {
                    fail(keys + ["allowedIPs", "\(j)"], other.peer == i ? "prefix \(prefix) is listed twice"
                         : "prefix \(prefix) is already routed to peer \(other.peer) (vpn.peers[\(other.peer)].allowedIPs[\(other.index)])")
                }
                seenPrefixes[prefix] = (i, j)
            }
            if let endpoint = p.endpoint {
                do { _ = try Endpoint(parsing: endpoint) } catch {
                    fail(keys + ["endpoint"], "endpoint '\(endpoint)' is not address:port (an IPv4 address, or [IPv6] in brackets, and a port)")
                }
            }
            if let k = p.persistentKeepalive, !(0...65535).contains(k) {
                fail(keys + ["persistentKeepalive"], "\(k) seconds is outside 0-65535")
            }
            peers.append(VPNConfig.Peer(publicKey: publicKey, presharedKey: psk.map(Base64.encode), endpoint: p.endpoint,
                                        allowedIPs: p.allowedIPs, persistentKeepalive: p.persistentKeepalive))
        }
        guard problems.count == before, let name, let privateKey else { return nil }
        let config = VPNConfig(interface: name.value, privateKey: Base64.encode(privateKey), listenPort: UInt16(section.listenPort),
                               address: section.addresses, peers: peers)
        if let mtu = section.mtu, !(1280...65535).contains(mtu) { fail(["vpn", "mtu"], "MTU \(mtu) is outside 1280-65535"); return nil }
        var tunnel = GuestTunTap(name: name, mode: .tun, addresses: section.addresses,
                                 routes: routes(peers: peers, addresses: section.addresses), service: "vpn")
        tunnel.mtu = section.mtu
        return VPNRole(config: config, tunnel: tunnel)
    }

    /// Routes through the tunnel for every allowed prefix, except the ones the interface's own addresses
    /// already cover as connected networks and the default routes (a default route through the tunnel would
    /// also carry the tunnel's own UDP; write it in `routes:` with a more specific route to the endpoint).
    static func routes(peers: [VPNConfig.Peer], addresses: [CIDR]) -> [CIDR] {
        let connected = Set(addresses.map { CIDRKey($0.network, $0.prefixLength) })
        var out: [CIDR] = []
        for prefix in peers.flatMap(\.allowedIPs) where prefix.prefixLength > 0 && !connected.contains(CIDRKey(prefix.network, prefix.prefixLength)) {
            out.append(prefix)
        }
        return out
    }

    private struct CIDRKey: Hashable {
        var bytes: [UInt8]
        var length: Int
        init(_ address: IPAddress, _ length: Int) { bytes = address.bytes; self.length = length }
    }

    /// A 32-byte key from a file or an environment variable, or nil after reporting why not.
    static func secret(_ source: SecretSource, keys: [String], manifestDirectory: String, environment: [String: String],
                       fail: ([String], String) -> Void, warn: ([String], String) -> Void) -> [UInt8]? {
        let text: String
        let origin: String
        switch (source.file, source.env) {
        case (nil, nil) where source.imported != nil:
            text = source.imported?.text ?? ""
            origin = source.imported?.origin ?? "the wg-quick file"
        case let (file?, nil):
            let full = file.hasPrefix("/") || manifestDirectory.isEmpty ? file : manifestDirectory + "/" + file
            guard let data = FileManager.default.contents(atPath: full) else {
                fail(keys + ["file"], "cannot read the key file '\(full)'")
                return nil
            }
            if let warning = KeyFiles.exposure(full) { warn(keys + ["file"], warning) }
            text = String(decoding: data, as: UTF8.self)
            origin = "the key file '\(full)'"
        case let (nil, env?):
            guard let value = environment[env] else {
                fail(keys + ["env"], "the environment variable '\(env)' is not set (it should hold a base64 key)")
                return nil
            }
            text = value
            origin = "the environment variable '\(env)'"
        default:
            fail(keys, "a key needs exactly one of 'file' (a path relative to the manifest) or 'env' (a variable name)")
            return nil
        }
        guard let bytes = Base64.decode(text.trimmingCharacters(in: .whitespacesAndNewlines)), bytes.count == 32 else {
            fail(keys, "\(origin) does not hold a WireGuard key (base64 of 32 bytes, as `wg genkey` prints)")
            return nil
        }
        return bytes
    }
}

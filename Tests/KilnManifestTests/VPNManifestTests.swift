import Foundation
import KilnConfig
import KilnVPN
import Testing
@testable import KilnManifest

/// The `vpn:` section: secrets from files and the environment, validation at the manifest position, and what
/// it compiles into (the TUN device with routes, the service, the firewall opening). Keys are generated here,
/// for these tests only.
struct VPNManifestTests {
    let own = X25519.keypair()
    let peer = X25519.keypair()
    let other = X25519.keypair()

    /// Writes the manifest and `site.key` (the appliance's private key) beside it.
    func write(_ body: String, key: String? = nil) throws -> String {
        let path = try ManifestLoaderTests().write("apiVersion: kiln/v1\nname: v\nbase: debian-cloud\n" + body)
        let dir = (path as NSString).deletingLastPathComponent
        try ((key ?? Base64.encode(own.privateKey)) + "\n").write(toFile: dir + "/site.key", atomically: true, encoding: .utf8)
        return path
    }

    func errors(_ path: String, environment: [String: String] = [:]) -> [ManifestError] {
        do { _ = try ManifestLoader.load(path, environment: environment); return [] } catch let e as ManifestErrors { return e.errors } catch let e as ManifestError {
            return [e]
        } catch { return [] }
    }

    var peerKey: String { Base64.encode(peer.publicKey) }

    @Test func compilesTunnelServiceAndSecrets() throws {
        let environment = ["KILN_TEST_VPN_PSK": Base64.encode(randomBytes(32))]
        let path = try write("""
        interfaces:
          wan: { addresses: [198.51.100.2/24] }
        vpn:
          addresses: [10.99.0.1/24]
          listenPort: 51820
          privateKey: { file: site.key }
          peers:
            - publicKey: \(peerKey)
              presharedKey: { env: KILN_TEST_VPN_PSK }
              allowedIPs: [10.99.0.0/24, 192.168.2.0/24]
              endpoint: 198.51.100.3:51820
              persistentKeepalive: 25
        """)
        let spec = try ManifestLoader.load(path, environment: environment)
        let vpn = try #require(spec.vpn)
        #expect(vpn.config.privateKey == Base64.encode(own.privateKey))
        #expect(vpn.config.peers.first?.presharedKey == environment["KILN_TEST_VPN_PSK"])
        #expect(vpn.config.listenPort == 51820)
        #expect(vpn.tunnel.name.value == "vpn0")
        // The tunnel's own /24 is a connected route already; only the site behind the peer gets one.
        #expect(vpn.tunnel.routes?.map(\.description) == ["192.168.2.0/24"])
        #expect(vpn.tunnel.service == "vpn")
        #expect(spec.tuntap.map(\.name.value) == ["vpn0"])
        #expect(vpn.service.argv == ["/sbin/kiln-vpn", "run", "/etc/kiln/vpn/vpn0.json"])
        #expect(spec.modules.contains("tun"))
        #expect(spec.guestExecutables == ["kiln-vpn"])
        // The redacted form used anywhere text is shown carries no key.
        #expect(!"\(vpn.config.redacted)".contains(vpn.config.privateKey))
    }

    /// A one-peer VPN manifest; `peerExtra` is added to the peer's flow mapping. The private key is on line 9.
    func onePeer(_ peerExtra: String = "") throws -> String {
        try write("""
        interfaces:
          wan: { addresses: [198.51.100.2/24] }
        vpn:
          addresses: [10.99.0.1/24]
          listenPort: 51820
          privateKey: { file: site.key }
          peers:
            - { publicKey: \(peerKey), allowedIPs: [10.99.0.0/24]\(peerExtra) }
        """)
    }

    /// As `wg` does: a private key file other users can read is used, with a warning at its line; 0600 gives none.
    @Test func aKeyFileReadableByOthersIsUsedWithAWarning() throws {
        let path = try onePeer()
        let key = (path as NSString).deletingLastPathComponent + "/site.key"
        #expect(chmod(key, 0o644) == 0)
        let warned = try ManifestLoader.load(path)
        #expect(warned.vpn != nil)
        #expect(warned.warnings.map(\.location.line) == [9], "\(warned.warnings)")
        #expect(warned.warnings.first?.description.contains("warning: vpn.privateKey.file: the key file") == true, "\(warned.warnings)")
        #expect(warned.warnings.first?.message.contains("readable by every user") == true)
        #expect(chmod(key, 0o600) == 0)
        #expect(try ManifestLoader.load(path).warnings.isEmpty)
    }

    /// `2001:db8::1:51820` could be the address 2001:db8::1:51820 with no port: brackets are required.
    @Test func anIPv6EndpointWithoutBracketsIsRefused() throws {
        let path = try onePeer(", endpoint: \"2001:db8::1:51820\"")
        let found = errors(path)
        #expect(found.map(\.path) == ["vpn.peers[0].endpoint"], "\(found)")
        #expect(found.map(\.location.line) == [11])
        #expect(throws: ValueError.self) { try Endpoint(parsing: "2001:db8::1:51820") }
        #expect(throws: ValueError.self) { try Endpoint(parsing: "fe80::1:51820") }
        #expect(try Endpoint(parsing: "[2001:db8::1]:51820").description == "[2001:db8:0:0:0:0:0:1]:51820")
        #expect(try Endpoint(parsing: "198.51.100.3:51820").description == "198.51.100.3:51820")
    }

    @Test func noVPNNoExecutable() throws {
        let spec = try ManifestLoader.load(try write("interfaces:\n  wan: { addresses: [198.51.100.2/24] }\n"))
        #expect(spec.guestExecutables.isEmpty)
        #expect(spec.vpn == nil)
    }

    @Test func errorsNamePositionsAndNeverTheKey() throws {
        let badKey = "c2hvcnQga2V5"   // base64, but 9 bytes
        let path = try write("""
        vpn:
          addresses: [10.99.0.1/24]
          listenPort: 70000
          privateKey: { file: site.key }
          peers:
            - publicKey: \(peerKey)
              allowedIPs: [10.99.0.2/32, 192.168.2.1/24]
              endpoint: vpn.example:51820
            - publicKey: abc
              allowedIPs: [10.99.0.2/32]
            - publicKey: \(Base64.encode(other.publicKey))
              presharedKey: { env: KILN_TEST_VPN_UNSET }
              allowedIPs: [10.99.0.3/32]
        """, key: badKey)
        let found = errors(path)
        let summary = found.map { "\($0.location.line):\($0.location.column) \($0.path): \($0.message)" }
        #expect(found.map(\.location.line) == [6, 7, 10, 11, 12, 13, 15], "\(summary)")
        #expect(found.map(\.message) == [
            "port 70000 is outside 1-65535",
            "the key file '\((path as NSString).deletingLastPathComponent)/site.key' does not hold a WireGuard key (base64 of 32 bytes, as `wg genkey` prints)",
            "allowed prefix '192.168.2.1/24' has host bits set; did you mean 192.168.2.0/24?",
            "endpoint 'vpn.example:51820' is not address:port (an IPv4 address, or [IPv6] in brackets, and a port)",
            "'abc' is not a WireGuard public key (base64 of 32 bytes, 44 characters ending in '=')",
            "prefix 10.99.0.2/32 is already routed to peer 0 (vpn.peers[0].allowedIPs[0])",
            "the environment variable 'KILN_TEST_VPN_UNSET' is not set (it should hold a base64 key)",
        ], "\(summary)")
        for e in found { #expect(!e.description.contains(badKey)) }
    }

    @Test func unknownPeerFieldIsRejectedWithSuggestion() throws {
        let path = try write("""
        vpn:
          addresses: [10.99.0.1/24]
          listenPort: 51820
          privateKey: { file: site.key }
          peers:
            - publicKey: \(peerKey)
              allowedIps: [10.99.0.2/32]
        """)
        let found = errors(path)
        #expect(found.first?.description.hasSuffix("vpn.peers[0].allowedIps: unknown key 'allowedIps' (did you mean 'allowedIPs'?)") == true,
                "\(found)")
        #expect(found.first?.location.line == 10)
    }

    @Test func keyFromTheEnvironmentAndOwnKeyAsPeerIsAnError() throws {
        let environment = ["KILN_TEST_VPN_KEY": Base64.encode(own.privateKey)]
        let path = try write("""
        vpn:
          interface: wg0
          addresses: [10.99.0.1/24]
          listenPort: 51820
          privateKey: { env: KILN_TEST_VPN_KEY }
          peers:
            - { publicKey: \(Base64.encode(own.publicKey)), allowedIPs: [10.99.0.2/32] }
            - { publicKey: \(peerKey), allowedIPs: [10.99.0.3/32] }
            - { publicKey: \(peerKey), allowedIPs: [10.99.0.4/32] }
        """)
        let found = errors(path, environment: environment)
        #expect(found.map(\.message) == ["this is the appliance's own public key (from vpn.privateKey)", "this public key is also peer 1's"], "\(found)")
        #expect(found.map(\.location.line) == [10, 12])
    }

    @Test func firewallOpensTheListenPort() throws {
        let path = try write("""
        interfaces:
          wan: { addresses: [198.51.100.2/24] }
          lan: { addresses: [192.168.1.1/24] }
        vpn:
          addresses: [10.99.0.1/24]
          listenPort: 51999
          privateKey: { file: site.key }
          peers: [ { publicKey: \(peerKey), allowedIPs: [10.99.0.2/32, 192.168.2.0/24] } ]
        firewall:
          zones: { wan: [wan], lan: [lan, vpn0] }
          policies: [ { from: lan, to: wan, action: accept } ]
        """)
        let spec = try ManifestLoader.load(path)
        let text = try #require(spec.firewall?.ruleset.text)
        #expect(text.contains("udp dport 51999 counter accept comment \"vpn listen port\""), "\(text)")
        #expect(spec.firewall?.spec.rules.filter { $0.comment == "vpn listen port" }.map(\.from) == ["wan", "lan"])
    }
}

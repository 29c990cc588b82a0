import Foundation
import KilnConfig
import KilnVPN
import Testing
@testable import KilnManifest

/// wg-quick files taken as they are: parsed as wg-quick reads them, compiled to the same tunnel as the
/// equivalent `vpn:` section, refused at their line where Kiln cannot honour them, keys never printed.
struct WGQuickTests {
    let own = X25519.keypair()
    let peer = X25519.keypair()
    let psk = Base64.encode(randomBytes(32))

    func conf(extra: String = "") -> String {
        """
        # site A
        [Interface]
        privatekey = \(Base64.encode(own.privateKey))
        Address = 10.99.0.1/24
        Address = fd00:99::1/64   # a second line adds to the list
        ListenPort = 51821
        MTU = 1420
        SaveConfig = false
        \(extra)
        [Peer]
        PublicKey = \(Base64.encode(peer.publicKey))
        PresharedKey = \(psk)
        AllowedIPs = 10.99.0.2/32, 192.168.2.0/24
        Endpoint = 198.51.100.2:51820
        PersistentKeepalive = off

        """
    }

    func write(_ conf: String, manifest vpn: String = "vpn: { wgQuick: { file: site.conf } }") throws -> String {
        let path = try ManifestLoaderTests().write("apiVersion: kiln/v1\nname: v\nbase: debian-cloud\n\(vpn)\n")
        let site = (path as NSString).deletingLastPathComponent + "/site.conf"
        try conf.write(toFile: site, atomically: true, encoding: .utf8)
        chmod(site, 0o600)
        return path
    }

    @Test func compilesToTheSameTunnelAsTheYAMLSection() throws {
        let spec = try ManifestLoader.load(try write(conf()))
        let dir = (try write(conf()) as NSString).deletingLastPathComponent
        try Base64.encode(own.privateKey).write(toFile: dir + "/own.key", atomically: true, encoding: .utf8)
        try psk.write(toFile: dir + "/ab.psk", atomically: true, encoding: .utf8)
        chmod(dir + "/own.key", 0o600); chmod(dir + "/ab.psk", 0o600)
        let yamlPath = dir + "/yaml.yaml"
        try """
            apiVersion: kiln/v1
            name: v
            base: debian-cloud
            vpn:
              addresses: [10.99.0.1/24, fd00:99::1/64]
              listenPort: 51821
              mtu: 1420
              privateKey: { file: own.key }
              peers:
                - { publicKey: \(Base64.encode(peer.publicKey)), presharedKey: { file: ab.psk }, allowedIPs: [10.99.0.2/32, 192.168.2.0/24], endpoint: "198.51.100.2:51820" }

            """.write(toFile: yamlPath, atomically: true, encoding: .utf8)
        let expected = try ManifestLoader.load(yamlPath)
        #expect(spec.vpn?.config == expected.vpn?.config)
        #expect(spec.vpn?.tunnel == expected.vpn?.tunnel)
        #expect(spec.vpn?.tunnel.mtu == 1420)
        #expect(spec.warnings.isEmpty, "\(spec.warnings)")
    }

    @Test func whatKilnCannotHonourIsAnErrorAtItsLine() throws {
        let path = try write(conf(extra: "PostUp = iptables -A FORWARD -i %i -j ACCEPT\nFwMark = 0x51820\nFoo = 1"))
        do { _ = try ManifestLoader.load(path); Issue.record("accepted") } catch let e as ManifestErrors {
            #expect(e.errors.map(\.location.line) == [9, 10, 11], "\(e)")
            #expect(e.errors.allSatisfy { $0.location.file.hasSuffix("/site.conf") })
            #expect(e.errors[0].message.contains("PostUp: Kiln runs no wg-quick scripts"))
            #expect(e.errors[1].message.contains("FwMark cannot be honoured"))
            #expect(e.errors[2].message.contains("unknown key 'Foo' in [Interface]"))
        }
    }

    @Test func aBadKeyNamesWhereItCameFromNeverItsValue() throws {
        let path = try write(conf().replacingOccurrences(of: "privatekey = \(Base64.encode(own.privateKey))", with: "PrivateKey = c2VjcmV0LXNob3J0"))
        do { _ = try ManifestLoader.load(path); Issue.record("accepted") } catch {
            let text = "\(error)"
            #expect(text.contains("the PrivateKey at ") && text.contains("site.conf:3"), "\(text)")
            #expect(!text.contains("c2VjcmV0LXNob3J0"))
        }
    }

    @Test func settingsBesideTheFileAreRefused() throws {
        let path = try write(conf(), manifest: "vpn: { wgQuick: { file: site.conf }, listenPort: 1 }")
        do { _ = try ManifestLoader.load(path); Issue.record("accepted") } catch {
            #expect("\(error)".contains("comes from the wg-quick file"), "\(error)")
        }
    }

    @Test func dnsAndAReadableFileAreWarnings() throws {
        let path = try write(conf(extra: "DNS = 192.0.2.53"))
        chmod((path as NSString).deletingLastPathComponent + "/site.conf", 0o644)
        let spec = try ManifestLoader.load(path)
        #expect(spec.warnings.map(\.location.line).sorted() == [1, 9], "\(spec.warnings)")
    }

    @Test func importPrintsYAMLWithoutKeys() throws {
        let dir = (try write(conf()) as NSString).deletingLastPathComponent
        let (yaml, _) = try WGQuickImport.importYAML(path: dir + "/site.conf")
        #expect(yaml.contains("addresses: [10.99.0.1/24, fd00:99::1/64]") && yaml.contains("listenPort: 51821") && yaml.contains("mtu: 1420"))
        #expect(yaml.contains("presharedKey: { env: WG_PRESHARED_KEY_0 }") && yaml.contains("allowedIPs: [10.99.0.2/32, 192.168.2.0/24]"))
        #expect(!yaml.contains(Base64.encode(own.privateKey)) && !yaml.contains(psk))
    }
}

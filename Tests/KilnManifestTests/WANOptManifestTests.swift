import Foundation
import KilnConfig
import KilnWANOpt
import Testing
@testable import KilnManifest

/// The `wanopt:` section: the repository's pair loads, and mistakes are reported where they are.
struct WANOptManifestTests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test func repositoryPairLoads() throws {
        let a = try ManifestLoader.load(Self.repo.appendingPathComponent("Appliances/wanopt-a.yaml").path)
        let config = try #require(a.wanopt)
        #expect(config.name == "branch" && config.lan.map(\.value) == ["lan"])
        #expect(config.peer?.description == "10.9.1.1:7800" && config.listen == nil)
        #expect(config.optimize == [WANOptMatch(destinations: [try CIDR("10.2.0.0/24")])])
        #expect(config.bypass == [WANOptMatch(ports: [try PortRange("22")])])
        #expect(config.store == WANOptStore(path: "/var/lib/kiln/wanopt", capacity: 64 << 20))
        #expect(config.keyFile == WANOptKey.path)
        let key = try #require(a.files.first { $0.path == WANOptKey.path })
        #expect(key.mode == 0o600 && key.contents.count == 65)
        // The key is in its own file only, never in the compiled config.
        let json = try KilnJSON.encode(config).pretty
        #expect(!json.contains(String(decoding: key.contents.dropLast(), as: UTF8.self)))
        #expect(a.modules.contains("nft_tproxy") && a.modules.contains("nft_socket"))
        #expect(a.sysctl.contains(GuestSysctl(key: "net.ipv4.ip_forward", value: "1")))

        let b = try ManifestLoader.load(Self.repo.appendingPathComponent("Appliances/wanopt-b.yaml").path)
        #expect(b.wanopt?.listen?.description == "10.9.1.1:7800" && b.wanopt?.peer == nil)
        #expect(b.files.first { $0.path == WANOptKey.path }?.contents == key.contents)
        _ = try ManifestLoader.load(Self.repo.appendingPathComponent("Appliances/wan.yaml").path)
    }

    func errors(_ wanopt: String, key: String? = "0123456789abcdef0123") throws -> [String] {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-wanopt-manifest-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("Images"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.copyItem(at: Self.repo.appendingPathComponent("Images/debian-cloud.yaml"),
                                         to: dir.appendingPathComponent("Images/debian-cloud.yaml"))
        if let key { try key.write(to: dir.appendingPathComponent("k"), atomically: true, encoding: .utf8) }
        let path = dir.appendingPathComponent("a.yaml").path
        try """
        apiVersion: kiln/v1
        name: a
        base: debian-cloud
        interfaces:
          lan: { addresses: [10.1.0.1/24] }
          wan: { addresses: [10.9.0.1/30] }
        wanopt:
        \(wanopt)
        """.write(toFile: path, atomically: true, encoding: .utf8)
        do {
            _ = try ManifestLoader.load(path)
            return []
        } catch let e as ManifestErrors {
            return e.errors.map { "\($0.location.line):\($0.location.column): \($0.path): \($0.message)" }
        } catch let e as ManifestError {
            return ["\(e.location.line):\(e.location.column): \(e.path): \(e.message)"]
        }
    }

    @Test func mistakesAreReportedAtTheirPlace() throws {
        #expect(try errors("  lan: [lam]\n  peer: 10.9.1.1:7800\n  key: { file: k }") ==
                ["8:9: wanopt.lan[0]: 'lam' is not an interface of this appliance (did you mean 'lan'?)"])
        #expect(try errors("  lan: [lan]\n  key: { file: k }") ==
                ["8:3: wanopt: give 'peer' (this side connects the channel) or 'listen' (this side accepts it), or both"])
        #expect(try errors("  lan: [lan]\n  peer: 10.9.1.1:7800\n  key: { file: k }", key: "short") ==
                ["10:8: wanopt.key: the pre-shared key has 5 bytes; use at least 16 (e.g. `openssl rand -hex 32`)"])
        #expect(try errors("  lan: [lan]\n  peer: 10.9.1.1:7800\n  key: { env: KILN_TEST_UNSET_WANOPT_KEY }") ==
                ["10:15: wanopt.key.env: environment variable KILN_TEST_UNSET_WANOPT_KEY is not set (it holds the pre-shared key at build time)"])
        #expect(try errors("  lan: [lan]\n  peer: 10.9.1.1:7800\n  key: { file: k }\n  chunk-size: 5000") ==
                ["11:15: wanopt.chunk-size: chunk size 5000 must be a power of two from 1024 to 1048576"])
        #expect(try !errors("  lan: [lan]\n  peer: 10.9.1.1\n  key: { file: k }").isEmpty)
        #expect(try errors("  lan: [lan]\n  peer: 10.9.1.1:7800\n  key: { file: k }\n  optimize: [ { destinations: [10.2.0.1/24] } ]") ==
                ["11:32: wanopt.optimize[0].destinations[0]: '10.2.0.1/24' has host bits set; did you mean 10.2.0.0/24?"])
    }
}

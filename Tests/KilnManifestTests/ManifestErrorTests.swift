import Foundation
import KilnConfig
import Testing
@testable import KilnManifest

/// Every class of manifest mistake, each with the exact message and position a user sees.
struct ManifestErrorTests {
    func decodeError(_ yaml: String) -> ManifestError? {
        do {
            _ = try ManifestDecoder(file: "m.yaml").decode(ApplianceManifest.self, from: yaml)
            return nil
        } catch let e as ManifestError { return e } catch { return nil }
    }

    let header = "apiVersion: kiln/v1\nname: r\nbase: debian-cloud\n"

    @Test func malformedYAML() {
        let e = decodeError("apiVersion: kiln/v1\nname: [r\n")
        #expect(e?.location.line == 3)
        #expect(e?.message.hasPrefix("malformed YAML:") == true)
    }

    @Test func unknownKeyWithSuggestion() {
        let e = decodeError(header + "interfaces:\n  wan:\n    adresses: [10.0.0.1/24]\n")
        #expect(e?.description == "m.yaml:6:5: error: interfaces.wan.adresses: unknown key 'adresses' (did you mean 'addresses'?)")
    }

    @Test func typoOfRequiredKeyIsReportedAsTypo() {
        let e = decodeError("apiVersion: kiln/v1\nnmae: r\nbase: debian-cloud\n")
        #expect(e?.description == "m.yaml:2:1: error: nmae: unknown key 'nmae' (did you mean 'name'?)")
    }

    @Test func missingKey() {
        let e = decodeError("apiVersion: kiln/v1\nbase: debian-cloud\n")
        #expect(e?.description == "m.yaml:1:1: error: missing required key 'name'")
    }

    @Test func wrongType() {
        let e = decodeError(header + "interfaces:\n  wan:\n    mtu: big\n")
        #expect(e?.description == "m.yaml:6:10: error: interfaces.wan.mtu: expected an integer, found 'big'")
        let list = decodeError(header + "packages: wireguard-tools\n")
        #expect(list?.description == "m.yaml:4:11: error: packages: expected a list, found 'wireguard-tools'")
    }

    @Test func badCIDR() {
        let e = decodeError(header + "interfaces:\n  wan:\n    addresses: [10.0.0.300/24]\n")
        #expect(e?.description == "m.yaml:6:17: error: interfaces.wan.addresses[0]: '10.0.0.300/24' is not a CIDR: '10.0.0.300' is not an IPv4 address (bad octet '300')")
        let p = decodeError(header + "interfaces:\n  wan:\n    addresses: [10.0.0.1/33]\n")
        #expect(p?.message == "prefix length /33 is out of range for 10.0.0.1 (0...32)")
    }

    @Test func badMAC() {
        let e = decodeError(header + "interfaces:\n  wan:\n    mac: \"52:54:00:zz:00:01\"\n")
        #expect(e?.description == "m.yaml:6:10: error: interfaces.wan.mac: '52:54:00:zz:00:01' is not a MAC address (bad pair 'zz')")
    }

    @Test func duplicateKeyIsReportedAtTheRepeat() {
        let e = decodeError(header + "hostname: a\nhostname: b\n")
        #expect(e?.description == "m.yaml:5:1: error: hostname: duplicate key 'hostname' (first at line 4, column 1)")
        let nested = decodeError(header + "interfaces:\n  wan: { mtu: 1500, mac: \"52:54:00:00:00:01\", mtu: 9000 }\n")
        #expect(nested?.description == "m.yaml:5:47: error: interfaces.wan.mtu: duplicate key 'mtu' (first at line 5, column 10)")
        let inList = decodeError(header + "routes:\n  - { to: default, via: 10.0.0.1 }\n  - to: default\n    via: 10.0.0.2\n    to: 10.0.0.0/8\n")
        #expect(inList?.description == "m.yaml:8:5: error: routes[1].to: duplicate key 'to' (first at line 6, column 5)")
    }

    /// A value of the wrong type is the error, at its own position, not the key that follows it.
    @Test func wrongTypeBeforeOtherKeysIsReportedAtTheValue() {
        let port = decodeError(header + "vpn:\n  addresses: [10.99.0.1/24]\n  listenPort: \"51820x\"\n  privateKey: { file: k }\n  peers: []\n")
        #expect(port?.description == "m.yaml:6:15: error: vpn.listenPort: expected an integer, found '51820x'")
        let mac = decodeError(header + "interfaces:\n  lan:\n    mac: \"52:54:00:zz:00:01\"\n    addresses: [10.0.0.1/24]\n")
        #expect(mac?.description == "m.yaml:6:10: error: interfaces.lan.mac: '52:54:00:zz:00:01' is not a MAC address (bad pair 'zz')")
        let flag = decodeError(header + "router: { forwarding: yes, masquerade: [wan] }\n")
        #expect(flag?.description == "m.yaml:4:23: error: router.forwarding: expected true or false, found 'yes'")
    }

    /// A private key written inline is refused at its line without being echoed.
    @Test func inlineSecretIsRefusedWithoutRepeatingIt() {
        let key = "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo="
        let e = decodeError(header + "vpn:\n  addresses: [10.99.0.1/24]\n  listenPort: 51820\n  privateKey: \(key)\n  peers: []\n")
        #expect(e?.location.line == 7 && e?.location.column == 15, "\(String(describing: e))")
        #expect(e?.path == "vpn.privateKey")
        #expect(e?.message.contains("{ file: PATH } or { env: NAME }") == true)
        #expect(e?.description.contains(key) == false)
    }

    @Test func roleSectionMissingKeyIsNamedWithItsPosition() {
        let e = decodeError(header + "wanopt: { peers: [] }\n")
        #expect(e?.description == "m.yaml:4:9: error: wanopt: missing required key 'lan'")
    }

    @Test func booleansAreStrict() {
        let e = decodeError(header + "router: { forwarding: yes }\n")
        #expect(e?.message == "expected true or false, found 'yes'")
    }
}

/// Cross-field validation through the loader, with the real base image of the repository.
struct ManifestLoaderTests {
    func write(_ yaml: String) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-manifest-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("Images"), withIntermediateDirectories: true)
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        try FileManager.default.copyItem(at: repo.appendingPathComponent("Images/debian-cloud.yaml"),
                                         to: dir.appendingPathComponent("Images/debian-cloud.yaml"))
        let path = dir.appendingPathComponent("a.yaml").path
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func routerManifestLoads() throws {
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let spec = try ManifestLoader.load(repo.appendingPathComponent("Appliances/router.yaml").path)
        #expect(spec.interfaces.map(\.name.value) == ["wan", "lan"])
        #expect(spec.vlans.map(\.name.value) == ["lan.10", "lan.20"])
        #expect(spec.routes.first?.to.description == "0.0.0.0/0")
        #expect(spec.sysctl.contains(GuestSysctl(key: "net.ipv4.ip_forward", value: "1")))
        #expect(spec.modules.contains("8021q") && spec.platformModules[.kvm]?.contains("virtio_net") == true && spec.platformModules[.xen]?.contains("xen-netfront") == true)
    }

    @Test func crossFieldErrorsAreAllReportedWithPositions() throws {
        let path = try write("""
        apiVersion: kiln/v1
        name: r
        base: debian-cloud
        interfaces:
          wan: { mac: "52:54:00:00:00:01" }
          lan: { mac: "52:54:00:00:00:01", vlans: { 5000: {} } }
        routes:
          - { to: default, dev: wna }
        """)
        do {
            _ = try ManifestLoader.load(path)
            Issue.record("expected errors")
        } catch let e as ManifestErrors {
            #expect(e.errors.map(\.message) == [
                "MAC 52:54:00:00:00:01 is also used by interface 'wan'",
                "VLAN id '5000' must be a number from 1 to 4094",
                "route device 'wna' is not an interface of this appliance (did you mean 'wan'?)",
            ])
            #expect(e.errors.map(\.location.line) == [6, 6, 8])
        }
    }

    @Test func routeWithHostBits() throws {
        let path = try write("apiVersion: kiln/v1\nname: r\nbase: debian-cloud\nroutes: [ { to: 10.0.0.1/8, dev: lo } ]\n")
        #expect(throws: ManifestError.self) { try ManifestLoader.load(path) }
    }

    @Test func ftraceStripWithSignaturesKeptIsRefusedAtItsLine() throws {
        let path = try write("apiVersion: kiln/v1\nname: r\nbase: debian-cloud\n")
        let base = URL(fileURLWithPath: path).deletingLastPathComponent().appendingPathComponent("Images/debian-cloud.yaml").path
        let text = try String(contentsOfFile: base, encoding: .utf8)
        #expect(text.contains("  moduleSignatures: strip\n") && text.contains("  moduleFtrace: strip\n"))
        try text.replacingOccurrences(of: "  moduleSignatures: strip\n", with: "  moduleSignatures: keep\n")
            .write(toFile: base, atomically: true, encoding: .utf8)
        let line = text.split(separator: "\n", omittingEmptySubsequences: false).firstIndex { $0.hasPrefix("  moduleFtrace:") }.map { $0 + 1 }
        do { _ = try ManifestLoader.load(path); Issue.record("expected an error") } catch let e as ManifestErrors {
            #expect(e.errors.count == 1)
            #expect(e.errors.first?.location.file.hasSuffix("Images/debian-cloud.yaml") == true)
            #expect(e.errors.first?.location.line == line)
            #expect(e.errors.first?.message.contains("moduleSignatures: strip") == true, "\(e)")
        }
    }

    @Test func missingBase() throws {
        let path = try write("apiVersion: kiln/v1\nname: r\nbase: nowhere\n")
        do { _ = try ManifestLoader.load(path); Issue.record("expected an error") } catch let e as ManifestErrors {
            #expect(e.errors.first?.location.line == 3)
            #expect(e.errors.first?.message.hasPrefix("no base image 'Images/nowhere.yaml'") == true)
        }
    }
}

/// The DHCP pools of the router role, validated against the interfaces' subnets, errors at the pool's line.
struct RouterDHCPManifestTests {
    @Test func poolOutsideTheSubnetPointsAtThePool() throws {
        let loader = ManifestLoaderTests()
        let path = try loader.write("""
        apiVersion: kiln/v1
        name: r
        base: debian-cloud
        interfaces:
          lan: { addresses: [10.0.0.1/24], vlans: { 10: { addresses: [10.10.0.1/24] } } }
        router:
          dhcp:
            lan.10: { pool: 10.11.0.100-10.11.0.199 }
        """)
        do { _ = try ManifestLoader.load(path); Issue.record("expected an error") } catch let e as ManifestErrors {
            #expect(e.errors.count == 1)
            #expect(e.errors.first?.location.line == 8, "\(e)")
            #expect(e.errors.first?.path.hasPrefix("router.dhcp.lan.10") == true, "\(e)")
            #expect(e.errors.first?.message.contains("10.10.0.0/24") == true, "\(e)")
        }
    }
}

/// Every manifest in Appliances/ is valid against `kiln schema`, checked by a real JSON Schema validator.
struct ManifestSchemaTests {
    @Test func appliancesValidateAgainstTheSchema() throws {
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-schema-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let schema = dir.appendingPathComponent("schema.json")
        try ManifestSchema.document.pretty.write(to: schema, atomically: true, encoding: .utf8)
        let manifests = try FileManager.default.contentsOfDirectory(atPath: repo.appendingPathComponent("Appliances").path)
            .filter { $0.hasSuffix(".yaml") && !$0.contains(".topology.") && !$0.contains(".deploy.") }
        #expect(!manifests.isEmpty)
        let script = """
        import json, sys, yaml, jsonschema
        schema = json.load(open(sys.argv[1]))
        bad = 0
        for path in sys.argv[2:]:
            doc = yaml.safe_load(open(path))
            for e in jsonschema.Draft202012Validator(schema).iter_errors(doc):
                print(f"{path}: {'/'.join(map(str, e.path))}: {e.message}"); bad += 1
        # A manifest with an unknown key must fail, or the schema checks nothing.
        if not list(jsonschema.Draft202012Validator(schema).iter_errors({"apiVersion": "kiln/v1", "name": "x", "base": "b", "nope": 1})):
            print("schema accepts unknown keys"); bad += 1
        sys.exit(1 if bad else 0)
        """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", script, schema.path] + manifests.map { repo.appendingPathComponent("Appliances/" + $0).path }
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        p.waitUntilExit()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(p.terminationStatus == 0, "\(text)")
    }
}

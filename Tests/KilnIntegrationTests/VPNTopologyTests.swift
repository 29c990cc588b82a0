import Foundation
import Testing

/// The VPN appliance under QEMU: two Kiln VPN gateways link two LANs (every check across goes through the
/// tunnel), and a built image carries its keys only where the guest reads them. Serialized: each boots VMs or
/// builds images, and the machine has two cores.
@Suite(.serialized)
struct VPNTopologyTests {
    /// The test-only keys the example appliances use (Appliances/test-keys/README.md).
    static func testKey(_ name: String) throws -> String {
        try String(contentsOfFile: Kiln.repo.appendingPathComponent("Appliances/test-keys/" + name).path, encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// An appliance built from a wg-quick file as it is, against a real wg-quick (wireguard-go) peer on the
    /// counterpart file; nothing of the peer's is left after the run.
    @Test func wgQuickPeerWorksAgainstAnApplianceBuiltFromItsCounterpart() throws {
        let out = try Kiln.temporaryDirectory("wgq")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let r = try Kiln.run(["test", "Appliances/vpn-wgquick.topology.yaml", "--out", out])
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        for check in [
            "the wg-quick peer reaches the appliance's tunnel address",
            "the wg-quick peer reaches the LAN behind the appliance",
            "the LAN reaches the wg-quick peer through the tunnel",
            "the appliance saw the handshake",
        ] {
            #expect(r.stdout.contains("PASS \(check) ("), "\(check): \(r.stdout)")
        }
        for key in ["vpn-a.key", "vpn-b.key", "vpn-ab.psk"] {
            let secret = try VPNTopologyTests.testKey(key)
            #expect(!r.stdout.contains(secret) && !r.stderr.contains(secret), "\(key) appears in kiln test's output")
        }
        #expect(Kiln.leftovers(of: r.pid).isEmpty, "\(Kiln.leftovers(of: r.pid))")
        // The peer's wireguard-go (interface kwgq<shell pid>) ends with the run.
        let survivors = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).filter { entry in
            guard Int32(entry) != nil, let data = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline") else { return false }
            return String(decoding: data.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self).hasPrefix("wireguard-go -f kwgq")
        }
        #expect(survivors.isEmpty, "wireguard-go left running: \(survivors)")
    }

    @Test func twoKilnGatewaysLinkTwoLANs() throws {
        let out = try Kiln.temporaryDirectory("vpn")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let junit = out + "/vpn.xml"
        let r = try Kiln.run(["test", "Appliances/vpn.topology.yaml", "--out", out, "--junit", junit])
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        for vm in ["a", "b"] { #expect(r.stdout.contains("vm \(vm) [") , "\(r.stdout)") }
        for check in [
            "site A's LAN host reaches site B's LAN host through the tunnel",
            "site B's LAN host reaches site A's LAN host",
            "a TCP connection across the tunnel",
            "site A's LAN host reaches site B's tunnel address",
            "a peer that never answered the handshake carries nothing",
            "iperf3 from site A's LAN to site B's LAN through the tunnel",
            "iperf3 from site B's LAN to site A's LAN (reverse)",
            "site A's status shows the handshake with site B",
            "site B's status hides the pre-shared key",
        ] {
            #expect(r.stdout.contains("PASS \(check) ("), "\(check): \(r.stdout)")
        }
        #expect(r.stdout.contains(" 0 failed"), "\(r.stdout)")
        for key in ["vpn-a.key", "vpn-b.key", "vpn-ab.psk"] {
            let secret = try VPNTopologyTests.testKey(key)
            #expect(!r.stdout.contains(secret) && !r.stderr.contains(secret), "\(key) appears in kiln test's output")
            let xml = (try? String(contentsOfFile: junit, encoding: .utf8)) ?? ""
            #expect(!xml.contains(secret), "\(key) appears in the JUnit report")
        }
        #expect(Kiln.leftovers(of: r.pid).isEmpty, "\(Kiln.leftovers(of: r.pid))")
    }

    /// Site A's kiln-vpn against Linux's kernel WireGuard in another Kiln-built VM (wireguard module, `wg` and
    /// busybox `ip` from the manifest's packages, no wg-quick): the LANs reach each other only through the tunnel.
    @Test func kilnGatewayAndKernelWireGuard() throws {
        let out = try Kiln.temporaryDirectory("vpnk")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let r = try Kiln.run(["test", "Appliances/vpn-kernel.topology.yaml", "--out", out])
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        for check in [
            "site A's LAN reaches the kernel peer's LAN through the tunnel",
            "the kernel peer's LAN reaches site A's LAN",
            "a TCP connection between Kiln's and the kernel's WireGuard",
            "site A's LAN reaches the kernel peer's tunnel address",
            "iperf3 from site A's LAN to the kernel peer's LAN through the tunnel",
            "iperf3 from the kernel peer's LAN to site A's LAN (reverse)",
            "site A's status shows the handshake with the kernel peer",
        ] {
            #expect(r.stdout.contains("PASS \(check) ("), "\(check): \(r.stdout)")
        }
        #expect(r.stdout.contains(" 0 failed"), "\(r.stdout)")
        #expect(Kiln.leftovers(of: r.pid).isEmpty, "\(Kiln.leftovers(of: r.pid))")
    }

    /// The private and pre-shared keys are in the image (mode 0600, where kiln-vpn reads them) and nowhere
    /// else: not in kiln's output, build.json or the SBOM. kiln-vpn is in the VPN image and not in the router's.
    @Test func keysOnlyInTheImage() throws {
        let out = try Kiln.temporaryDirectory("vpnkeys")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let r = try Kiln.run(["build", "Appliances/vpn.yaml", "--out", out, "--verbose"])
        #expect(r.status == 0, "\(r.stderr)")
        let secrets = try ["vpn-a.key", "vpn-ab.psk"].map(VPNTopologyTests.testKey)
        for file in ["build.json", "sbom.spdx.json"] {
            let text = (try? String(contentsOfFile: out + "/vpn/" + file, encoding: .utf8)) ?? ""
            #expect(!text.isEmpty)
            for s in secrets { #expect(!text.contains(s), "a key appears in \(file)") }
        }
        for s in secrets { #expect(!r.stdout.contains(s) && !r.stderr.contains(s), "a key appears in kiln build's output") }
        let entries = try Initramfs.entries(out + "/vpn/initramfs.cpio.zst")
        let config = try #require(entries["etc/kiln/vpn/vpn0.json"])
        #expect(config.mode & 0o777 == 0o600, "mode \(String(config.mode, radix: 8))")
        let text = String(decoding: config.data, as: UTF8.self)
        for s in secrets { #expect(text.contains(s), "the guest's VPN config lacks a key") }
        #expect(entries["sbin/kiln-vpn"].map { $0.mode & 0o111 != 0 && $0.data.starts(with: [0x7F, 0x45, 0x4C, 0x46]) } == true)
        let guest = String(decoding: entries["etc/kiln/config.json"]?.data ?? [], as: UTF8.self)
        for s in secrets { #expect(!guest.contains(s), "a key appears in /etc/kiln/config.json") }

        let router = try Kiln.run(["build", "Appliances/router.yaml", "--out", out])
        #expect(router.status == 0, "\(router.stderr)")
        let routerEntries = try Initramfs.entries(out + "/router/initramfs.cpio.zst")
        #expect(routerEntries["sbin/kiln-init"] != nil && routerEntries["sbin/kiln-vpn"] == nil)
    }
}

/// Reads a Kiln initramfs: zstd frames of newc cpio archives, one per layer (later entries win).
enum Initramfs {
    struct Entry { var mode: UInt32; var data: [UInt8] }

    static func entries(_ path: String) throws -> [String: Entry] {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["zstd", "-dc", path]
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        let bytes = [UInt8](pipe.fileHandleForReading.readDataToEndOfFile())
        p.waitUntilExit()
        var out: [String: Entry] = [:]
        var i = 0
        func hex(_ at: Int) -> Int { Int(String(decoding: bytes[at..<at + 8], as: UTF8.self), radix: 16) ?? 0 }
        while i + 110 <= bytes.count {
            guard bytes[i..<i + 6].elementsEqual(Array("070701".utf8)) else { i += 1; continue }   // padding between archives
            let mode = UInt32(hex(i + 14)), size = hex(i + 54), nameSize = hex(i + 94)
            let name = String(decoding: bytes[(i + 110)..<(i + 110 + nameSize - 1)], as: UTF8.self)
            let dataStart = (i + 110 + nameSize + 3) & ~3
            if name != "TRAILER!!!" {
                out[name.hasPrefix("/") ? String(name.dropFirst()) : name] = Entry(mode: mode, data: Array(bytes[dataStart..<dataStart + size]))
            }
            i = (dataStart + size + 3) & ~3
        }
        return out
    }
}

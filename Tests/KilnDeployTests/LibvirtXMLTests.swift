import Foundation
import KilnImage
import Testing
@testable import KilnDeploy

/// Domain XML: golden text, and accepted by libvirt's own schema (`virt-xml-validate`).
@Suite struct LibvirtXMLTests {
    static func directDomain() throws -> LibvirtDomain {
        let image = DeployImage(directory: "/srv/out/router", info: try routerInfo())
        let profile = DeployProfile(
            name: "edge-router-1", memory: 256, vcpus: 2,
            nics: [("wan", .init(bridge: "br-wan", queues: 2)), ("lan", .init(network: "branch-lan"))],
            libvirt: .init(type: "kvm", pool: "default"))
        return try LibvirtDomain.plan(
            image: image, profile: profile,
            boot: .direct(kernel: "/var/lib/libvirt/images/edge-router-1.222222222222.vmlinuz",
                          initrd: "/var/lib/libvirt/images/edge-router-1.111111111111.initramfs.cpio.zst",
                          cmdline: image.info.cmdline),
            console: .file("/var/lib/libvirt/images/edge-router-1.console.log"),
            artifacts: [.init(role: "current", file: "vmlinuz", sha256: String(repeating: "2", count: 64), volume: "edge-router-1.222222222222.vmlinuz"),
                        .init(role: "previous", file: "vmlinuz", sha256: String(repeating: "3", count: 64), volume: "edge-router-1.333333333333.vmlinuz")])
    }

    static func uefiDomain() throws -> LibvirtDomain {
        let image = DeployImage(directory: "/srv/out/router", info: try routerInfo(extra: [("disk.qcow2", String(repeating: "4", count: 64), 17_000_000)]))
        let profile = DeployProfile(
            memory: 512, boot: .uefi,
            nics: [("wan", .init(tap: "kiln-wan")), ("lan", .init(hostdev: "0000:03:10.1", vlan: 10))],
            libvirt: .init(type: "qemu", console: "pty", emulator: "/usr/bin/qemu-system-x86_64"))
        return try LibvirtDomain.plan(image: image, profile: profile, boot: .uefi(disk: "/pool/router.444444444444.disk.qcow2", format: "qcow2"),
                                      console: .pty, artifacts: [])
    }

    @Test func directBootMatchesGolden() throws { try compareGolden("direct.xml", try Self.directDomain().xml) }
    @Test func uefiMatchesGolden() throws { try compareGolden("uefi.xml", try Self.uefiDomain().xml) }

    @Test(.enabled(if: toolExists("virt-xml-validate") && toolExists("xmllint")))
    func libvirtSchemaAcceptsBoth() throws {
        let dir = try ScratchDirectory("xml")
        for (name, domain) in [("direct", try Self.directDomain()), ("uefi", try Self.uefiDomain())] {
            let path = try dir.write(name + ".xml", domain.xml)
            let r = try shell(["virt-xml-validate", path, "domain"])
            #expect(r.status == 0, "\(name): \(r.output)")
        }
    }

    @Test func metadataRoundTripsAndRollbackSwapsRoles() throws {
        let xml = try Self.directDomain().xml
        let parsed = LibvirtDeployer.parseArtifacts(xml)
        #expect(parsed.map(\.role) == ["current", "previous"])
        #expect(parsed[1].volume == "edge-router-1.333333333333.vmlinuz")
        // libvirt writes attributes back with double quotes.
        let requoted = xml.replacingOccurrences(of: "'", with: "\"")
        #expect(LibvirtDeployer.parseArtifacts(requoted) == parsed)
        #expect(LibvirtDeployer.parseArtifacts(LibvirtDeployer.swapRoles(requoted)).map(\.role) == ["previous", "current"])
    }

    @Test func nicsMustMatchTheImage() throws {
        let image = DeployImage(directory: "/srv/out/router", info: try routerInfo())
        let missing = DeployProfile(nics: [("wan", .init(bridge: "br0"))])
        #expect(throws: DeployError.self) { try LibvirtDomain.matchNICs(image: image, profile: missing, domain: "r") }
        let extra = DeployProfile(nics: [("wan", .init(bridge: "br0")), ("lan", .init(bridge: "br1")), ("dmz", .init(bridge: "br2"))])
        do {
            _ = try LibvirtDomain.matchNICs(image: image, profile: extra, domain: "r")
            Issue.record("an unknown NIC was accepted")
        } catch let e as DeployError {
            #expect(e.description.contains("nics.dmz") && e.description.contains("wan, lan"))
        }
    }

    @Test func derivedMACsAreStableAndLocal() {
        let a = DeployImage.derivedMAC(domain: "r1", nic: "wan")
        #expect(a == DeployImage.derivedMAC(domain: "r1", nic: "wan"))
        #expect(a != DeployImage.derivedMAC(domain: "r2", nic: "wan"))
        #expect(a.hasPrefix("52:54:00:") && a.count == 17)
    }

    @Test func escapesUserText() throws {
        var d = try Self.directDomain()
        d.boot = .direct(kernel: "/a&b", initrd: "/c", cmdline: "x='<y>'")
        #expect(d.xml.contains("<kernel>/a&amp;b</kernel>"))
        #expect(d.xml.contains("<cmdline>x=&apos;&lt;y&gt;&apos;</cmdline>"))
    }
}

import KilnConfig
import Testing
@testable import KilnManifest

/// The Xen host role (`xen:`) and the base's per-platform modules.
@Suite struct XenManifestTests {
    @Test func xenHostSectionAddsItsPackagesModulesAndToolstack() throws {
        let path = try ManifestLoaderTests().write("""
        apiVersion: kiln/v1
        name: xh
        base: debian-cloud
        interfaces:
          up: {}
        xen:
          hypervisor: xen-hypervisor-4.17-amd64
          tools: xen-utils-4.17
          cmdline: "dom0_mem=512M,max:512M"
        """)
        let spec = try ManifestLoader.load(path)
        let xen = try #require(spec.xen)
        #expect(spec.packages.contains("xen-hypervisor-4.17-amd64") && spec.packages.contains("xen-utils-4.17"))
        #expect(xen.cmdline == "console=com1 loglvl=warning guest_loglvl=warning dom0_mem=512M,max:512M")
        #expect(xen.config.program("xl") == "/usr/lib/xen-4.17/bin/xl")
        #expect(xen.service.argv == ["/sbin/kiln-init", "service", "xen", "/etc/kiln/xen.json"])
        #expect(XenHostRole.modules.allSatisfy(spec.modules.contains))
        #expect(spec.runtimeLibraries.contains("/usr/lib/xen-4.17/bin/xenstored"))
    }

    @Test func packageNamesThatAreNotXensAreRefusedAtTheirLine() throws {
        let path = try ManifestLoaderTests().write("""
        apiVersion: kiln/v1
        name: xh
        base: debian-cloud
        xen:
          hypervisor: linux-image-amd64
          tools: xen-utils
          cmdline: "a\\"b"
        """)
        do { _ = try ManifestLoader.load(path); Issue.record("expected errors") } catch let e as ManifestErrors {
            #expect(e.errors.map(\.location.line) == [5, 6, 7])
            #expect(e.errors[0].message.contains("xen-hypervisor-<version>-<arch>"))
            #expect(e.errors[1].message.contains("xen-utils-<version>"))
        }
    }

    @Test func linksAreFilesOfTheirOwnKind() throws {
        let path = try ManifestLoaderTests().write("""
        apiVersion: kiln/v1
        name: l
        base: debian-cloud
        files:
          - { path: /bin/sh, link: busybox }
          - { path: /bin/x, link: busybox, content: "y" }
        """)
        do { _ = try ManifestLoader.load(path); Issue.record("expected an error") } catch let e as ManifestErrors {
            #expect(e.errors.map(\.location.line) == [6])
            #expect(e.errors.first?.message.contains("exactly one of 'content', 'source' or 'link'") == true)
        }
    }

    @Test func theBaseListsEachPlatformsDrivers() throws {
        let spec = try ManifestLoader.load(try ManifestLoaderTests().write("apiVersion: kiln/v1\nname: p\nbase: debian-cloud\n"))
        #expect(spec.platformModules[.kvm] == ["virtio_pci", "virtio_net"])
        #expect(spec.platformModules[.xen] == ["xen-netfront"])
        #expect(!spec.modules.contains("virtio_net"))
    }
}

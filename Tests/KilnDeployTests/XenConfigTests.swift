import Foundation
import KilnImage
import Testing
@testable import KilnDeploy

/// xl configs: golden text, and parsed back by Xen's own config parser (libxlutil), which runs without a
/// hypervisor. The checker is compiled from the C below at test time.
@Suite struct XenConfigTests {
    static func pv(type: String = "pv") throws -> XenConfig {
        let image = DeployImage(directory: "/srv/out/router", info: try routerInfo())
        let profile = DeployProfile(name: "edge-router-1", memory: 256, vcpus: 2,
                                    nics: [("wan", .init(bridge: "xenbr0")), ("lan", .init(hostdev: "0000:03:10.1"))],
                                    xen: .init(type: type))
        return try XenConfig.plan(image: image, profile: profile, hashes: ["vmlinuz": String(repeating: "2", count: 64),
                                                                          "initramfs.cpio.zst": String(repeating: "1", count: 64)])
    }

    static func hvm() throws -> XenConfig {
        let image = DeployImage(directory: "/srv/out/router", info: try routerInfo(extra: [("disk.raw", String(repeating: "5", count: 64), 24_000_000)]))
        let profile = DeployProfile(memory: 512, boot: .uefi, nics: [("wan", .init(bridge: "xenbr0")), ("lan", .init(bridge: "xenbr1"))],
                                    xen: .init(directory: "/srv/xen"))
        return try XenConfig.plan(image: image, profile: profile, hashes: ["disk.raw": String(repeating: "5", count: 64)])
    }

    @Test func pvMatchesGolden() throws { try compareGolden("pv.cfg", try Self.pv().text) }
    @Test func hvmMatchesGolden() throws { try compareGolden("hvm.cfg", try Self.hvm().text) }

    @Test func directBootConsoleIsHvc0AndTypeFromTheProfile() throws {
        guard case let .direct(type, _, _, cmdline) = try Self.pv().boot else { Issue.record("not a direct boot"); return }
        #expect(type == "pv")
        #expect(cmdline == "console=hvc0 panic=-1 quiet loglevel=4 random.trust_cpu=on")
        #expect(try Self.pv(type: "pvh").text.contains("\ntype = \"pvh\"\n"))
    }

    @Test func artifactsSitOnTheHostByHashAndTheCommentsReadBack() throws {
        let text = try Self.pv().text
        #expect(text.contains("kernel = \"/var/lib/kiln/edge-router-1/222222222222.vmlinuz\""))
        #expect(text.contains("ramdisk = \"/var/lib/kiln/edge-router-1/111111111111.initramfs.cpio.zst\""))
        let back = XenConfig.artifactComments(text)
        #expect(back.map(\.file) == ["vmlinuz", "initramfs.cpio.zst"])
        #expect(back.map(\.sha256) == [String(repeating: "2", count: 64), String(repeating: "1", count: 64)])
    }

    @Test func profileRefusesAnUnknownXenTypeAndShellCharactersInPaths() {
        #expect(DeployProfile(xen: .init(type: "hvm")).problems().map(\.message) == ["pv or pvh"])
        #expect(DeployProfile(xen: .init(directory: "/var/lib/k'iln")).problems().count == 1)
        #expect(DeployProfile(xen: .init(directory: "relative")).problems().count == 1)
        #expect(DeployProfile().problems().isEmpty)
    }

    @Test func connectionURIs() throws {
        #expect(try XenHost(uri: "local").transport == .local)
        let ssh = try XenHost(uri: "ssh://root@xen1:2222", identity: "/k", sshOptions: ["StrictHostKeyChecking=accept-new"])
        #expect(ssh.transport == .ssh(destination: "root@xen1", port: 2222, identity: "/k", options: ["StrictHostKeyChecking=accept-new"]))
        #expect(ssh.argv("xl list") == ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=20", "-p", "2222", "-i", "/k",
                                        "-o", "StrictHostKeyChecking=accept-new", "root@xen1", "--", "xl list"])
        #expect(try XenHost(uri: "ssh://xen1").transport == .ssh(destination: "xen1", port: nil, identity: nil, options: []))
        #expect(try XenHost(uri: "local").argv("xl info") == ["sh", "-c", "xl info"])
        for bad in ["xen1", "ssh://", "ssh://-oProxyCommand=x", "qemu:///system"] {
            #expect(throws: DeployError.self, "\(bad)") { try XenHost(uri: bad) }
        }
        #expect(XenDeployer.quoted("a'b c") == "'a'\\''b c'")
    }

    @Test func tapNICsHaveNoXenEquivalent() throws {
        let image = DeployImage(directory: "/srv/out/router", info: try routerInfo())
        let profile = DeployProfile(nics: [("wan", .init(tap: "t0")), ("lan", .init(bridge: "b"))])
        #expect(throws: DeployError.self) { try XenConfig.plan(image: image, profile: profile, hashes: [:]) }
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/usr/include/libxlutil.h") && toolExists("gcc")))
    func libxlutilParsesPV() throws {
        let out = try Self.parse(try Self.pv().text)
        #expect(out.status == 0, "\(out.output)")
        #expect(out.output == """
            name=edge-router-1
            type=pv
            kernel=/var/lib/kiln/edge-router-1/222222222222.vmlinuz
            ramdisk=/var/lib/kiln/edge-router-1/111111111111.initramfs.cpio.zst
            cmdline=console=hvc0 panic=-1 quiet loglevel=4 random.trust_cpu=on
            memory=256
            vcpus=2
            vif=mac=52:54:00:00:01:01,bridge=xenbr0
            pci=0000:03:10.1

            """)
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/usr/include/libxlutil.h") && toolExists("gcc")))
    func libxlutilParsesHVMAndItsDisk() throws {
        let out = try Self.parse(try Self.hvm().text)
        #expect(out.status == 0, "\(out.output)")
        #expect(out.output.contains("type=hvm\n"))
        #expect(out.output.contains("disk=/srv/xen/router/555555555555.disk.raw format=raw vdev=xvda\n"))
        #expect(out.output.contains("vif=mac=52:54:00:00:01:02,bridge=xenbr1\n"))
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/usr/include/libxlutil.h") && toolExists("gcc")))
    func libxlutilRejectsBrokenSyntax() throws {
        let out = try Self.parse("name = \"x\"\nvif = [ 'mac=1' \n")
        // The checker itself must have been built: a failed compile is not a rejection.
        #expect(!out.output.hasPrefix("gcc:"), "\(out.output)")
        #expect(out.status != 0)
    }

    /// Compiles the checker once per process and runs it on `text`.
    static func parse(_ text: String) throws -> (status: Int32, output: String) {
        let dir = try ScratchDirectory("xl")
        let source = try dir.write("xlcheck.c", checkerSource)
        let binary = dir.path + "/xlcheck"
        let cc = try shell(["gcc", "-O0", "-o", binary, source, "-lxlutil", "-lxenlight", "-lxentoollog"])
        guard cc.status == 0 else { return (cc.status, "gcc: " + cc.output) }
        let cfg = try dir.write("domain.cfg", text)
        return try shell([binary, cfg])
    }

    /// Reads a config the way `xl create` does (xlu_cfg_readfile), then the fields Kiln writes; PCI and disk
    /// specs go through libxlutil's own spec parsers.
    static let checkerSource = #"""
    #include <stdio.h>
    #include <string.h>
    #include <libxl.h>
    #include <libxlutil.h>

    static void str(XLU_Config *c, const char *k) {
        const char *v;
        if (!xlu_cfg_get_string(c, k, &v, 0)) printf("%s=%s\n", k, v);
    }
    static void num(XLU_Config *c, const char *k) {
        long v;
        if (!xlu_cfg_get_long(c, k, &v, 0)) printf("%s=%ld\n", k, v);
    }
    int main(int argc, char **argv) {
        if (argc != 2) return 2;
        XLU_Config *c = xlu_cfg_init(stderr, argv[1]);
        if (!c || xlu_cfg_readfile(c, argv[1])) return 1;
        str(c, "name"); str(c, "type"); str(c, "kernel"); str(c, "ramdisk"); str(c, "cmdline");
        num(c, "memory"); num(c, "vcpus");
        XLU_ConfigList *l; int n; const char *item;
        if (!xlu_cfg_get_list(c, "vif", &l, &n, 0))
            for (int i = 0; (item = xlu_cfg_get_listitem(l, i)); i++) {
                if (!strstr(item, "mac=") || !strstr(item, "bridge=")) { fprintf(stderr, "bad vif %s\n", item); return 1; }
                printf("vif=%s\n", item);
            }
        if (!xlu_cfg_get_list(c, "pci", &l, &n, 0))
            for (int i = 0; (item = xlu_cfg_get_listitem(l, i)); i++) {
                libxl_device_pci pci; libxl_device_pci_init(&pci);
                if (xlu_pci_parse_spec_string(c, &pci, item)) { fprintf(stderr, "bad pci %s\n", item); return 1; }
                printf("pci=%04x:%02x:%02x.%x\n", pci.domain, pci.bus, pci.dev, pci.func);
            }
        if (!xlu_cfg_get_list(c, "disk", &l, &n, 0))
            for (int i = 0; (item = xlu_cfg_get_listitem(l, i)); i++) {
                libxl_device_disk d; libxl_device_disk_init(&d);
                if (xlu_disk_parse(c, 1, &item, &d)) { fprintf(stderr, "bad disk %s\n", item); return 1; }
                printf("disk=%s format=%s vdev=%s\n", d.pdev_path, libxl_disk_format_to_string(d.format), d.vdev);
            }
        xlu_cfg_destroy(c);
        return 0;
    }
    """#
}

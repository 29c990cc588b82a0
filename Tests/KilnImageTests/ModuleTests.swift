import Foundation
import Glibc
import Testing
@testable import KilnImage

/// modules.dep parsing, closures in load order, and the .modinfo scanner over real relocatable ELF objects.
@Suite struct ModuleTests {
    let modulesDep = """
        kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko
        kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
        kernel/net/core/failover.ko:
        kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
        kernel/drivers/virtio/virtio_ring.ko:
        kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko
        kernel/drivers/virtio/virtio_pci_modern_dev.ko:
        kernel/drivers/net/wireguard/wireguard.ko.xz: kernel/lib/crypto/libcurve25519-generic.ko.xz kernel/net/ipv4/udp_tunnel.ko.xz
        kernel/lib/crypto/libcurve25519-generic.ko.xz:
        kernel/net/ipv4/udp_tunnel.ko.xz:

        """

    @Test func closureIsInLoadOrder() throws {
        let index = try ModuleIndex(modulesDep: modulesDep, builtinList: "kernel/net/packet/af_packet.ko\n")
        let order = try index.closure(of: ["virtio_pci", "virtio-net", "af_packet"]).map(\.name)
        #expect(order == ["virtio_pci_modern_dev", "virtio_ring", "virtio", "virtio_pci", "failover", "net_failover", "virtio_net"])
        // Every module comes after all of its dependencies.
        for (position, name) in order.enumerated() {
            let dependencies = try #require(index.modules[name]).dependencies.map(ModuleIndex.name(ofPath:))
            for dependency in dependencies {
                #expect(try #require(order.firstIndex(of: dependency)) < position)
            }
        }
        #expect(try index.closure(of: ["virtio_pci", "virtio-net"]) == index.closure(of: ["virtio_pci", "virtio_net"]))
    }

    @Test func prerequisitesAreTheDirectAndSoftDependencies() throws {
        var index = try ModuleIndex(modulesDep: modulesDep)
        index.modules["virtio_ring"]?.softPost = ["failover"]
        let modules = try index.closure(of: ["virtio_pci", "virtio_net", "wireguard"])
        let names = modules.map(\.name)
        let before = index.loadPrerequisites(for: modules)
        func named(_ module: String) -> Set<String> {
            Set(before[names.firstIndex(of: module)!].map { names[$0] })
        }
        #expect(named("virtio_pci") == ["virtio_pci_modern_dev", "virtio_ring", "virtio"])
        #expect(named("virtio_net") == ["net_failover", "failover", "virtio_ring", "virtio"])
        // failover has no declared dependency, but virtio_ring asks for it to load after itself.
        #expect(named("failover") == ["virtio_ring"])
        // Independent chains have nothing in common, so kiln-init may load them at the same time.
        #expect(named("wireguard") == ["libcurve25519_generic", "udp_tunnel"])
        #expect(named("udp_tunnel").isEmpty && named("virtio_ring").isEmpty)
        // Every prerequisite comes earlier in the list.
        for (position, list) in before.enumerated() { #expect(list.allSatisfy { $0 < position }) }
    }

    @Test func dashesAndUnderscoresAreTheSame() throws {
        let index = try ModuleIndex(modulesDep: modulesDep)
        let order = try index.closure(of: ["wireguard"])
        #expect(order.map(\.name) == ["libcurve25519_generic", "udp_tunnel", "wireguard"])
        #expect(order.last?.imagePath == "kernel/drivers/net/wireguard/wireguard.ko")
        #expect(order.last?.path == "kernel/drivers/net/wireguard/wireguard.ko.xz")
        #expect(try index.closure(of: ["libcurve25519_generic"]).count == 1)
    }

    @Test func unknownModulesGetASuggestion() throws {
        let index = try ModuleIndex(modulesDep: modulesDep)
        #expect(throws: ImageError.unknownModule(name: "virtio_nett", suggestion: "virtio_net")) {
            try index.closure(of: ["virtio-nett"])
        }
        #expect(throws: ImageError.unknownModule(name: "nf_tables", suggestion: nil)) {
            try index.closure(of: ["nf_tables"])
        }
        let message = ImageError.unknownModule(name: "virtio_nett", suggestion: "virtio_net").description
        #expect(message.contains("did you mean 'virtio_net'"))
    }

    @Test func malformedLinesNameTheLine() {
        #expect(throws: ImageError.malformedModulesDep(path: "modules.dep", line: 2, reason: "expected 'module.ko: deps...'")) {
            try ModuleIndex(modulesDep: "kernel/a.ko:\nkernel/b.ko kernel/a.ko\n")
        }
        #expect(throws: ImageError.malformedModulesDep(path: "modules.dep", line: 1, reason: "'kernel/a.txt' is not a .ko file")) {
            try ModuleIndex(modulesDep: "kernel/a.txt:\n")
        }
    }

    @Test func cyclesAreReported() throws {
        let index = try ModuleIndex(modulesDep: "kernel/a.ko: kernel/b.ko\nkernel/b.ko: kernel/a.ko\n")
        #expect(throws: ImageError.self) { try index.closure(of: ["a"]) }
    }

    @Test func writesAModulesDepForTheSubset() throws {
        let index = try ModuleIndex(modulesDep: modulesDep)
        let closure = try index.closure(of: ["virtio_net", "wireguard"])
        let text = index.modulesDep(for: closure)
        // modprobe loads a line's dependencies from last to first.
        #expect(text.contains("kernel/drivers/net/virtio_net.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko\n"))
        #expect(text.contains("kernel/drivers/net/wireguard/wireguard.ko: kernel/net/ipv4/udp_tunnel.ko kernel/lib/crypto/libcurve25519-generic.ko\n"))
        #expect(!text.contains(".xz"))
        #expect(!text.contains("virtio_pci"))
        // What we write parses back to the same set of modules.
        let reparsed = try ModuleIndex(modulesDep: text)
        #expect(Set(try reparsed.closure(of: ["virtio_net", "wireguard"]).map(\.name)) == Set(closure.map(\.name)))
    }

    /// Compiles a relocatable object with a `.modinfo` section, as modpost generates for a real module.
    func makeModule(_ dir: TemporaryDirectory, _ relative: String, modinfo: [String]) throws {
        let fields = modinfo.map { "\"\($0)\\0\"" }.joined(separator: " ")
        try dir.write("src.c", "__attribute__((section(\".modinfo\"), used)) static const char info[] = \(fields);\nint init_module(void) { return 0; }\n")
        let out = dir.path + "/mods/" + relative
        try FileSystem.makeDirectories(FileSystem.parentPath(out))
        let result = try runTool("clang", ["-c", "-o", out, dir.path + "/src.c"])
        #expect(result.status == 0, "\(result.stderr)")
    }

    @Test func scansModinfoAndDecompressesModules() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        try makeModule(dir, "kernel/drivers/virtio/virtio_ring.ko", modinfo: ["license=GPL", "depends=", "name=virtio_ring"])
        try makeModule(dir, "kernel/drivers/virtio/virtio.ko", modinfo: ["depends=virtio_ring", "name=virtio"])
        try makeModule(dir, "kernel/lib/libcurve25519-generic.ko", modinfo: ["depends=", "name=libcurve25519_generic"])
        try makeModule(dir, "kernel/net/nf_log_syslog.ko", modinfo: ["depends=", "name=nf_log_syslog"])
        try makeModule(dir, "kernel/net/xt_LOG.ko", modinfo: ["depends=virtio", "softdep=pre: nf_log_syslog absent_module", "name=xt_LOG"])
        try makeModule(dir, "kernel/net/wireguard.ko", modinfo: ["depends=libcurve25519-generic,virtio_ring", "name=wireguard"])
        let plainWireguard = try FileSystem.readFile(dir.path + "/mods/kernel/net/wireguard.ko")
        let plainVirtio = try FileSystem.readFile(dir.path + "/mods/kernel/drivers/virtio/virtio.ko")
        #expect(try runTool("xz", ["--check=crc32", dir.path + "/mods/kernel/net/wireguard.ko"]).status == 0)
        #expect(try runTool("zstd", ["-q", "--rm", dir.path + "/mods/kernel/drivers/virtio/virtio.ko"]).status == 0)
        try dir.write("mods/modules.builtin", "kernel/net/unix/unix.ko\n")

        let index = try ModuleScanner.scan(modulesDirectory: dir.path + "/mods")
        #expect(index.modules.count == 6)
        #expect(index.builtin == ["unix"])
        #expect(index.modules["wireguard"]?.path == "kernel/net/wireguard.ko.xz")
        #expect(index.modules["wireguard"]?.dependencies == ["kernel/lib/libcurve25519-generic.ko", "kernel/drivers/virtio/virtio_ring.ko"])
        let order = try index.closure(of: ["unix", "xt_LOG", "wireguard"]).map(\.name)
        #expect(order == ["nf_log_syslog", "virtio_ring", "virtio", "xt_LOG", "libcurve25519_generic", "wireguard"])

        #expect(try ModuleScanner.loadableBytes(ofFile: dir.path + "/mods/kernel/net/wireguard.ko.xz") == plainWireguard)
        #expect(try ModuleScanner.loadableBytes(ofFile: dir.path + "/mods/kernel/drivers/virtio/virtio.ko.zst") == plainVirtio)

        // The sparse read of a plain module finds the same fields as reading it whole.
        let path = dir.path + "/mods/kernel/net/xt_LOG.ko"
        let whole = try ELFFile(bytes: try FileSystem.readFile(path))
        let section = try #require(whole.section(named: ".modinfo"))
        let expected = ModuleScanner.parseModinfo(try FileSystem.readFile(path)[section.offset..<(section.offset + section.size)])
        let sparse = try ModuleScanner.modinfo(ofFile: path)
        #expect(sparse.map { "\($0.0)=\($0.1)" } == expected.map { "\($0.0)=\($0.1)" })
        #expect(sparse.contains { $0.0 == "softdep" && $0.1 == "pre: nf_log_syslog absent_module" })
    }

    @Test func aMissingDependencyFileIsAnError() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        try makeModule(dir, "kernel/a.ko", modinfo: ["depends=not_there", "name=a"])
        #expect(throws: ImageError.self) { try ModuleScanner.scan(modulesDirectory: dir.path + "/mods") }
    }
}

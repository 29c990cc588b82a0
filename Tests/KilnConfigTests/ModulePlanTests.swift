import KilnConfig
import Testing

/// `/etc/kiln/modules`: what the builder writes is what kiln-init reads, and a damaged file names its line.
struct ModulePlanTests {
    @Test func roundTripsThroughItsText() throws {
        let plan = ModulePlan(release: "6.1.0-57-cloud-amd64", modules: [
            .init(path: "kernel/drivers/virtio/virtio_ring.ko"),
            .init(path: "kernel/drivers/virtio/virtio.ko", prerequisites: [0]),
            .init(path: "kernel/net/netfilter/nf_tables.ko"),
            .init(path: "kernel/drivers/virtio/virtio_pci.ko", prerequisites: [0, 1], platforms: [.kvm]),
            .init(path: "kernel/drivers/net/xen-netfront.ko", platforms: [.xen]),
            .init(path: "kernel/drivers/block/xen-blkfront.ko", prerequisites: [2], platforms: [.kvm, .xen]),
        ])
        let text = plan.text
        #expect(text.contains("\nkernel/drivers/virtio/virtio.ko 0\n"))
        #expect(text.contains("\nkernel/drivers/virtio/virtio_pci.ko 0,1 @kvm\n"))
        #expect(text.contains("\nkernel/drivers/net/xen-netfront.ko - @xen\n"))
        #expect(text.contains("\nkernel/drivers/block/xen-blkfront.ko 2 @kvm,xen\n"))
        #expect(try ModulePlan(parsing: text) == plan)
        #expect(plan.file(2) == "/lib/modules/6.1.0-57-cloud-amd64/kernel/net/netfilter/nf_tables.ko")
    }

    @Test func aModuleLoadsOnItsPlatformsOnly() {
        let everywhere = ModulePlan.Module(path: "kernel/a.ko")
        let xen = ModulePlan.Module(path: "kernel/b.ko", platforms: [.xen])
        #expect(everywhere.loads(on: .kvm) && everywhere.loads(on: .xen))
        #expect(xen.loads(on: .xen) && !xen.loads(on: .kvm))
    }

    @Test func errorsNameTheLine() {
        let cases: [(String, ParseErrorExpectation)] = [
            ("release r\nkernel/a.ko 1\n", .init(line: 2, contains: "prerequisite '1' is not an earlier module")),
            ("release r\nkernel/a.ko\nkernel/b.ko 0,x\n", .init(line: 3, contains: "prerequisite 'x'")),
            ("release r\n/etc/passwd\n", .init(line: 2, contains: "expected '<module>.ko")),
            ("release r\nkernel/../../x.ko\n", .init(line: 2, contains: "expected '<module>.ko")),
            ("release r\nrelease s\n", .init(line: 2, contains: "one 'release")),
            ("kernel/a.ko\n", .init(line: 1, contains: "no 'release' line")),
            ("release r\nkernel/a.ko - @vmware\n", .init(line: 2, contains: "unknown platform 'vmware'")),
            ("release r\nkernel/a.ko - xen\n", .init(line: 2, contains: "expected '@<platform>")),
            ("release r\nkernel/a.ko - @xen extra\n", .init(line: 2, contains: "expected '<module>.ko")),
        ]
        for (text, expected) in cases {
            #expect(throws: ModulePlan.ParseError.self) { try ModulePlan(parsing: text) }
            do {
                _ = try ModulePlan(parsing: text)
            } catch {
                #expect(error.line == expected.line && error.description.contains(expected.contains)
                        && error.description.hasPrefix("/etc/kiln/modules:\(expected.line):"), "\(error)")
            }
        }
    }

    struct ParseErrorExpectation {
        var line: Int
        var contains: String
    }
}

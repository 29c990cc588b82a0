import KilnConfig
import Testing

/// `/etc/kiln/modules`: what the builder writes is what kiln-init reads, and a damaged file names its line.
struct ModulePlanTests {
    @Test func roundTripsThroughItsText() throws {
        let plan = ModulePlan(release: "6.1.0-57-cloud-amd64", modules: [
            .init(path: "kernel/drivers/virtio/virtio_ring.ko"),
            .init(path: "kernel/drivers/virtio/virtio.ko", prerequisites: [0]),
            .init(path: "kernel/net/netfilter/nf_tables.ko"),
            .init(path: "kernel/drivers/virtio/virtio_pci.ko", prerequisites: [0, 1]),
        ])
        let text = plan.text
        #expect(text.contains("\nkernel/drivers/virtio/virtio_pci.ko 0,1\n"))
        #expect(try ModulePlan(parsing: text) == plan)
        #expect(plan.file(2) == "/lib/modules/6.1.0-57-cloud-amd64/kernel/net/netfilter/nf_tables.ko")
    }

    @Test func errorsNameTheLine() {
        let cases: [(String, ParseErrorExpectation)] = [
            ("release r\nkernel/a.ko 1\n", .init(line: 2, contains: "prerequisite '1' is not an earlier module")),
            ("release r\nkernel/a.ko\nkernel/b.ko 0,x\n", .init(line: 3, contains: "prerequisite 'x'")),
            ("release r\n/etc/passwd\n", .init(line: 2, contains: "expected '<module>.ko")),
            ("release r\nkernel/../../x.ko\n", .init(line: 2, contains: "expected '<module>.ko")),
            ("release r\nrelease s\n", .init(line: 2, contains: "one 'release")),
            ("kernel/a.ko\n", .init(line: 1, contains: "no 'release' line")),
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

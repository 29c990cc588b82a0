import Foundation
import Testing
@testable import KilnTest

/// A topology VM placed as a Xen guest of another VM: validation at its line, and its links resolved to the
/// Xen host NIC in the dom0 bridge its deploy profile names.
struct XenPlacementTests {
    static func write(_ vms: String, checks: String = "- { on: xen1, event: ready }") throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-xen-topo-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try """
            name: r
            memory: 256
            nics:
              wan: { bridge: br-wan }
              lan: { bridge: br-lan }

            """.write(toFile: dir.appendingPathComponent("r.deploy.yaml").path, atomically: true, encoding: .utf8)
        let path = dir.appendingPathComponent("t.topology.yaml").path
        try """
            apiVersion: kiln/v1
            name: t
            vms:
            \(vms)
            hosts: { op: {}, client: {} }
            links: [ [op, xen1.mgmt], [client, r1.lan] ]
            checks:
              \(checks)

            """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static let placed = """
          xen1: { appliance: xenhost.yaml }
          r1: { appliance: router.yaml, xen: { host: xen1, profile: r.deploy.yaml, connect: "ssh://root@192.0.2.1", via: op } }
        """

    @Test func guestLinksBecomeTheXenHostNICInTheProfilesBridge() throws {
        let path = try Self.write(Self.placed)
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        let (t, _) = try TopologyLoader.load(path)
        let host = BootableImage(directory: "/o/xenhost", kernel: "k", initrd: "i", cmdline: "", nics: [("mgmt", nil), ("wan", nil), ("lan", nil)],
                                 artifacts: [:], bridges: ["br-wan": ["wan"], "br-lan": ["lan"]])
        let guests = XenGuests(topology: t, path: path)
        #expect(guests.names == ["r1"])
        let resolved = try guests.resolvingLinks(images: ["xen1": host])
        #expect(resolved.links.map { [$0.a, $0.b] } == [["op", "xen1.mgmt"], ["client", "xen1.lan"]])
        // A bridge with none of the host's NICs in it cannot carry the link.
        let bare = BootableImage(directory: "/o/xenhost", kernel: "k", initrd: "i", cmdline: "", nics: [("mgmt", nil)], artifacts: [:],
                                 bridges: ["br-lan": ["vif0"]])
        #expect(throws: XenGuestError.self) { try guests.resolvingLinks(images: ["xen1": bare]) }
    }

    @Test func placementProblemsAreReportedAtTheirKeys() throws {
        let path = try Self.write("""
              xen1: { appliance: xenhost.yaml }
              r1: { appliance: router.yaml, memory: 512, xen: { host: r1, profile: r.deploy.yaml, connect: "ssh://x", via: nobody } }
            """, checks: "- { on: r1, console: status, output: dhcp }")
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        do {
            _ = try TopologyLoader.load(path)
            Issue.record("a bad placement was accepted")
        } catch {
            let text = "\(error)"
            #expect(text.contains("vms.r1.xen.host: 'r1' is not another VM"), "\(text)")
            #expect(text.contains("vms.r1.xen.via: 'nobody' is not a host"), "\(text)")
            #expect(text.contains("vms.r1: a Xen guest takes its memory and vCPUs from its deploy profile"), "\(text)")
            #expect(text.contains("'r1' is a Xen guest: its console is read from dom0's log"), "\(text)")
        }
    }
}

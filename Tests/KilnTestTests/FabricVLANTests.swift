import CKilnShims
import Foundation
import Testing
@testable import KilnTest

/// The fabric of a topology with `vlan:` links, with this test standing in for the VM: it attaches to the VM
/// NIC's TAP as QEMU would and reads and writes the frames the VM would see.
@Suite(.serialized, .enabled(if: canMakeNamespaces, "needs root and iproute2"))
struct FabricVLANTests {
    static let topology = """
        apiVersion: kiln/v1
        name: vlan-fabric
        vms:
          r1: { appliance: router.yaml }
        hosts:
          c10: { addresses: [192.0.2.10/24] }
          c10b: { addresses: [192.0.2.11/24] }
          c20: { addresses: [198.51.100.10/24] }
          plain: { addresses: [203.0.113.10/24] }
        links:
          - [c10, r1.lan, { vlan: 10 }]
          - [r1.lan, c10b, { vlan: 10 }]
          - [c20, r1.lan, { vlan: 20 }]
          - [plain, r1.lan]
        checks: []
        """

    func load(_ text: String) throws -> Topology {
        let path = NSTemporaryDirectory() + "kiln-fabric-vlan-\(getpid()).topology.yaml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try TopologyLoader.load(path).0
    }

    func namespaces(_ prefix: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/run/netns")) ?? []).filter { $0.hasPrefix(prefix) }
    }

    /// Test frames the VM reads from its TAP within `seconds` (tags are in-band there).
    func read(_ tap: Int32, for seconds: Double) -> [String] {
        var seen: [String] = [], buffer = [UInt8](repeating: 0, count: 2048)
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            var p = pollfd(fd: tap, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 50) > 0 else { continue }
            let n = Glibc.read(tap, &buffer, buffer.count)
            if n > 0, let f = SeenFrame(Array(buffer.prefix(n))) { seen.append(f.description) }
        }
        return seen.sorted()
    }

    @Test(.timeLimit(.minutes(1)))
    func accessPortsTagAndUntagAtTheVMNIC() throws {
        let fabric = Fabric()
        defer { fabric.tearDown() }
        try fabric.setUp(load(Self.topology), nics: ["r1": ["wan", "lan"]])
        let fab = fabric.fabricNamespace
        guard let tapName = fabric.taps["r1.lan"] else { Issue.record("no TAP for r1.lan"); return }
        #expect(fabric.trunks.keys.sorted() == ["r1.lan"])
        #expect(fabric.trunks["r1.lan"]?.ports.map(\.mode) == [.trunk, .native, .access(10), .access(10), .access(20)])
        // The TAP is the relay's alone; its untagged side is in the bridge with the plain host's veth.
        let tapLink = try HostCommand.check(["ip", "-n", fab, "-o", "link", "show", "dev", tapName])
        #expect(!tapLink.contains("master"), "\(tapLink)")
        #expect(try HostCommand.check(["ip", "-n", fab, "-o", "link", "show", "dev", tapName + "b"]).contains("master br"))
        #expect(fabric.hostInterfaces["c10"] == ["eth0"] && fabric.hostInterfaces["c10b"] == ["eth0"])

        let tap = try inNamespace(fab) { () throws -> Int32 in
            var name = Array(tapName.utf8CString) + Array(repeating: 0, count: 16)
            let fd = kiln_tun_open(&name, 1, 0)
            guard fd >= 0 else { throw TestError.environment("attach \(tapName): \(fd)") }
            return fd
        }
        defer { close(tap) }
        _ = fcntl(tap, F_SETFL, fcntl(tap, F_GETFL) | O_NONBLOCK)
        let c10 = try RawPort(namespace: fabric.namespace(ofHost: "c10"), interface: "eth0")
        let c10b = try RawPort(namespace: fabric.namespace(ofHost: "c10b"), interface: "eth0")
        let c20 = try RawPort(namespace: fabric.namespace(ofHost: "c20"), interface: "eth0")
        let plain = try RawPort(namespace: fabric.namespace(ofHost: "plain"), interface: "eth0")
        usleep(200_000)  // the bridge port's forwarding state

        for frame in [testFrame(src: 1, vlan: 10, payload: "vm-10"), testFrame(src: 1, vlan: 20, payload: "vm-20"),
                      testFrame(src: 1, vlan: nil, payload: "vm-native")] {
            #expect(write(tap, frame, frame.count) == frame.count)
        }
        try c10.send(testFrame(src: 2, vlan: nil, payload: "c10"))
        try c20.send(testFrame(src: 3, vlan: nil, payload: "c20"))
        try plain.send(testFrame(src: 4, vlan: nil, payload: "plain"))

        #expect(read(tap, for: 0.6) == ["c10@vlan10", "c20@vlan20", "plain"])
        #expect(c10.receive(for: 0.3).map(\.description).sorted() == ["vm-10"])
        #expect(c10b.receive(for: 0.3).map(\.description).sorted() == ["c10", "vm-10"])
        #expect(c20.receive(for: 0.3).map(\.description).sorted() == ["vm-20"])
        #expect(plain.receive(for: 0.3).map(\.description).sorted() == ["vm-native"])

        close(tap)
        let relays = fabric.trunks.values.map(\.threadName)
        fabric.tearDown()
        #expect(namespaces(fabric.prefix).isEmpty)
        #expect(!relays.isEmpty && Set(relays).isDisjoint(with: threadNames()))
    }

    @Test func vlanOnlyJoinsAHostToAVMNIC() throws {
        let text = Self.topology.replacingOccurrences(of: "- [plain, r1.lan]", with: "- [plain, c20, { vlan: 5 }]")
        let fabric = Fabric()
        defer { fabric.tearDown() }
        #expect(throws: TestError.self) { try fabric.setUp(load(text), nics: ["r1": ["wan", "lan"]]) }
        fabric.tearDown()
        #expect(namespaces(fabric.prefix).isEmpty)
    }
}

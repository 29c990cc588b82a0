import Foundation
import KilnSystem
import Testing
@testable import KilnTest

@Suite struct VLANTrunkRuleTests {
    @Test func ingressClassifiesByPortMode() {
        #expect(VLANTrunk.ingressVLAN(tci: nil, on: .trunk) == 0)
        #expect(VLANTrunk.ingressVLAN(tci: 10, on: .trunk) == 10)
        #expect(VLANTrunk.ingressVLAN(tci: 0xe00a, on: .trunk) == 10, "priority bits are not part of the VID")
        #expect(VLANTrunk.ingressVLAN(tci: 0x6000, on: .trunk) == 0, "a priority tag (VID 0) is native")
        #expect(VLANTrunk.ingressVLAN(tci: nil, on: .access(20)) == 20)
        #expect(VLANTrunk.ingressVLAN(tci: 10, on: .access(20)) == nil, "tagged frames from an access host are dropped")
        #expect(VLANTrunk.ingressVLAN(tci: nil, on: .native) == 0)
        #expect(VLANTrunk.ingressVLAN(tci: 10, on: .native) == nil)
    }

    @Test func egressTagsOnlyOnTrunks() {
        #expect(VLANTrunk.egress(vlan: 10, to: .trunk) == .tagged)
        #expect(VLANTrunk.egress(vlan: 0, to: .trunk) == .untagged)
        #expect(VLANTrunk.egress(vlan: 10, to: .access(10)) == .untagged)
        #expect(VLANTrunk.egress(vlan: 20, to: .access(10)) == .drop)
        #expect(VLANTrunk.egress(vlan: 0, to: .access(10)) == .drop)
        #expect(VLANTrunk.egress(vlan: 0, to: .native) == .untagged)
        #expect(VLANTrunk.egress(vlan: 10, to: .native) == .drop)
    }

    /// virtio-net header: flags, gso_type, hdr_len, gso_size, csum_start, csum_offset (little-endian).
    func header(flags: UInt8, hdrLen: UInt16, csumStart: UInt16) -> [UInt8] {
        [flags, 1, UInt8(hdrLen & 0xff), UInt8(hdrLen >> 8), 0xa8, 0x05, UInt8(csumStart & 0xff), UInt8(csumStart >> 8), 16, 0]
    }

    @Test func virtioHeaderFollowsAnInsertedOrRemovedTag() {
        var h = header(flags: 1, hdrLen: 66, csumStart: 34)
        h.withUnsafeMutableBytes { VLANTrunk.shiftVirtioNetHeader($0.baseAddress!, by: 4) }
        #expect(h == header(flags: 1, hdrLen: 70, csumStart: 38))
        h.withUnsafeMutableBytes { VLANTrunk.shiftVirtioNetHeader($0.baseAddress!, by: -4) }
        #expect(h == header(flags: 1, hdrLen: 66, csumStart: 34))
        // Without NEEDS_CSUM the checksum start is meaningless and stays; a zero hdr_len stays zero.
        var v = header(flags: 2, hdrLen: 0, csumStart: 34)
        v.withUnsafeMutableBytes { VLANTrunk.shiftVirtioNetHeader($0.baseAddress!, by: 4) }
        #expect(v == header(flags: 2, hdrLen: 0, csumStart: 34))
    }

    /// A control buffer as recvmsg fills it: cmsghdr (len u64, level i32, type i32) + tpacket_auxdata.
    func control(level: Int32 = 263, type: Int32 = 8, status: UInt32, tci: UInt16, tpid: UInt16) -> [UInt8] {
        var bytes: [UInt8] = []
        func append<T>(_ v: T) { withUnsafeBytes(of: v) { bytes += $0 } }
        append(UInt64(16 + 20)); append(level); append(type)
        append(status); append(UInt32(60)); append(UInt32(60)); append(UInt16(0)); append(UInt16(0)); append(tci); append(tpid)
        bytes += [0, 0, 0, 0]  // CMSG_SPACE padding
        return bytes
    }

    @Test func auxdataGivesTheTagTheKernelStripped() {
        func tag(_ c: [UInt8]) -> [UInt16]? { c.withUnsafeBytes { VLANTrunk.auxdataTag($0).map { [$0.tpid, $0.tci] } } }
        #expect(tag(control(status: 0x10 | 0x40, tci: 0x200a, tpid: 0x8100)) == [0x8100, 0x200a])
        #expect(tag(control(status: 0x10, tci: 20, tpid: 0)) == [0x8100, 20], "without TPID_VALID the TPID is 802.1Q")
        #expect(tag(control(status: 0x10 | 0x40, tci: 0, tpid: 0x88a8)) == [0x88a8, 0], "a VID 0 tag is still a tag")
        #expect(tag(control(status: 0x01, tci: 10, tpid: 0x8100)) == nil, "VLAN_VALID unset: untagged")
        #expect(tag(control(level: 1, status: 0x10, tci: 10, tpid: 0x8100)) == nil, "another level's message")
        #expect(tag([]) == nil)
        #expect(tag(Array(control(status: 0x10, tci: 10, tpid: 0x8100).prefix(20))) == nil, "a truncated message")
    }
}

@Suite(.serialized, .enabled(if: canMakeNamespaces, "needs root and iproute2"))
struct VLANTrunkNetworkTests {
    @Test(.timeLimit(.minutes(1)))
    func framesReachOnlyTheirVLANAndLeaveTheTrunkTagged() throws {
        let net = TestNet()
        defer { net.close() }
        let fab = try net.add("fab"), vm = try net.add("vm")
        let h10 = try net.add("h10"), h10b = try net.add("h10b"), h20 = try net.add("h20")
        // The "VM" end is a plain veth in a namespace: this host kernel cannot speak 802.1Q there either.
        try net.veth(fab, "trk", vm, "eth0")
        try net.veth(fab, "a10", h10, "eth0")
        try net.veth(fab, "a10b", h10b, "eth0")
        try net.veth(fab, "a20", h20, "eth0")
        let trunk = VLANTrunk(namespace: fab, ports: [
            .init(interface: "trk", mode: .trunk), .init(interface: "a10", mode: .access(10)),
            .init(interface: "a10b", mode: .access(10)), .init(interface: "a20", mode: .access(20)),
        ])
        try trunk.start()
        defer { trunk.stop() }
        #expect(threadNames().filter { $0 == trunk.threadName }.count == 1)

        let vmPort = try RawPort(namespace: vm, interface: "eth0")
        let p10 = try RawPort(namespace: h10, interface: "eth0"), p10b = try RawPort(namespace: h10b, interface: "eth0")
        let p20 = try RawPort(namespace: h20, interface: "eth0")
        try vmPort.send(testFrame(src: 1, vlan: 10, payload: "vm-to-10"))
        try vmPort.send(testFrame(src: 1, vlan: 20, payload: "vm-to-20"))
        try vmPort.send(testFrame(src: 1, vlan: 30, payload: "vm-to-30"))
        try vmPort.send(testFrame(src: 1, vlan: nil, payload: "vm-untagged"))
        try p10.send(testFrame(src: 2, vlan: nil, payload: "from-10"))
        try p10b.send(testFrame(src: 3, vlan: nil, payload: "from-10b"))
        try p20.send(testFrame(src: 4, vlan: nil, payload: "from-20"))
        try p10.send(testFrame(src: 2, vlan: 20, payload: "hop-to-20"))

        func sorted(_ frames: [SeenFrame]) -> [String] { frames.map(\.description).sorted() }
        #expect(sorted(vmPort.receive(for: 0.6)) == ["from-10@vlan10", "from-10b@vlan10", "from-20@vlan20"])
        #expect(sorted(p10.receive(for: 0.3)) == ["from-10b", "vm-to-10"])
        #expect(sorted(p10b.receive(for: 0.3)) == ["from-10", "vm-to-10"])
        #expect(sorted(p20.receive(for: 0.3)) == ["vm-to-20"])

        trunk.stop()
        #expect(!threadNames().contains(trunk.threadName))
    }

    @Test func startFailsWithoutLeavingAThread() throws {
        let net = TestNet()
        defer { net.close() }
        let fab = try net.add("fab")
        let trunk = VLANTrunk(namespace: fab, ports: [.init(interface: "absent0", mode: .trunk)])
        #expect(throws: TestError.self) { try trunk.start() }
        #expect(!threadNames().contains(trunk.threadName))
        let nowhere = VLANTrunk(namespace: net.name("gone"), ports: [])
        #expect(throws: TestError.self) { try nowhere.start() }
    }

    /// Two relays back to back over a veth trunk: IP in each VLAN and natively, TCP and UDP (GSO frames and
    /// partial checksums from the hosts' veths) across, tags seen on the wire by tshark, VLANs kept apart.
    @Test(.enabled(if: toolExists("tshark") && toolExists("iperf3")), .timeLimit(.minutes(2)))
    func twoTrunksCarryIPAndKeepVLANsApart() throws {
        let net = TestNet()
        defer { net.close() }
        let fabA = try net.add("fabA"), fabB = try net.add("fabB")
        try net.veth(fabA, "trk", fabB, "trk")
        var trunks: [VLANTrunk] = []
        defer { for t in trunks { t.stop() } }
        let plan: [(String, VLANTrunk.Mode, [String: String])] = [
            ("a10", .access(10), ["a": "192.0.2.1/24", "b": "192.0.2.2/24"]),
            ("a20", .access(20), ["a": "198.51.100.1/24", "b": "198.51.100.2/24"]),
            ("an", .native, ["a": "203.0.113.1/24", "b": "203.0.113.2/24"]),
        ]
        for (side, fab) in [("a", fabA), ("b", fabB)] {
            var ports: [VLANTrunk.Port] = [.init(interface: "trk", mode: .trunk)]
            for (port, mode, addresses) in plan {
                let host = try net.add(port + side)
                try net.veth(fab, port, host, "eth0")
                try net.ip(host, "addr", "add", addresses[side] ?? "", "dev", "eth0")
                ports.append(.init(interface: port, mode: mode))
            }
            let trunk = VLANTrunk(namespace: fab, ports: ports)
            try trunk.start()
            trunks.append(trunk)
        }
        // Same subnet as VLAN 10, but in VLAN 20 and on the native VLAN: must stay unreachable from VLAN 10.
        try net.ip(net.name("a20b"), "addr", "add", "192.0.2.3/24", "dev", "eth0")
        try net.ip(net.name("anb"), "addr", "add", "192.0.2.4/24", "dev", "eth0")

        func run(_ host: String, _ argv: [String], timeout: Double = 20) throws -> HostCommand.Result {
            try HostCommand.run(["ip", "netns", "exec", net.name(host)] + argv, timeout: timeout)
        }
        let capture = try Capture(namespace: fabA, interface: "trk", fields: ["vlan.id", "ip.src", "ip.dst"], filter: "icmp", seconds: 6)
        #expect(try run("a10a", ["ping", "-c", "1", "-W", "3", "192.0.2.2"]).status == 0)
        #expect(try run("a20a", ["ping", "-c", "1", "-W", "3", "198.51.100.2"]).status == 0)
        #expect(try run("ana", ["ping", "-c", "1", "-W", "3", "203.0.113.2"]).status == 0)
        let wire = Set(capture.lines())
        #expect(wire.contains("10,192.0.2.1,192.0.2.2") && wire.contains("10,192.0.2.2,192.0.2.1"), "\(wire)")
        #expect(wire.contains("20,198.51.100.1,198.51.100.2") && wire.contains("20,198.51.100.2,198.51.100.1"), "\(wire)")
        #expect(wire.contains(",203.0.113.1,203.0.113.2") && wire.contains(",203.0.113.2,203.0.113.1"), "native is untagged: \(wire)")

        #expect(try run("a10a", ["ping", "-c", "1", "-W", "1", "192.0.2.3"]).status != 0, "VLAN 20 host reached from VLAN 10")
        #expect(try run("a10a", ["ping", "-c", "1", "-W", "1", "192.0.2.4"]).status != 0, "native host reached from VLAN 10")

        let devNull = try FileDescriptor.open("/dev/null", .readWrite)
        let server = try ChildProcess.spawn(["ip", "netns", "exec", net.name("a10b"), "iperf3", "-s", "-B", "192.0.2.2", "-p", "5201"],
                                            stdin: devNull.rawValue, stdout: devNull.rawValue, stderr: devNull.rawValue)
        defer {
            kill(server, SIGTERM)
            _ = try? ChildProcess.wait(server)
        }
        usleep(500_000)
        for (label, extra) in [("TCP", [String]()), ("TCP reverse", ["-R"]), ("UDP", ["-u", "-b", "50M"])] {
            let r = try run("a10a", ["iperf3", "-c", "192.0.2.2", "-p", "5201", "-n", "4M", "-J", "--connect-timeout", "3000"] + extra, timeout: 40)
            #expect(r.status == 0, "\(label): \(r.output.suffix(400))")
            let json = try JSONSerialization.jsonObject(with: Data(r.output.utf8)) as? [String: Any]
            let end = json?["end"] as? [String: Any]
            if extra.contains("-u") {
                let sum = end?["sum"] as? [String: Any]
                let packets = sum?["packets"] as? Int ?? 0, lost = sum?["lost_packets"] as? Int ?? 0
                #expect(packets > 0 && lost * 2 < packets, "UDP datagrams lost (bad checksums?): \(lost)/\(packets)")
            } else {
                // iperf3 stops counting at the receiver when the sender has sent its 4 MiB, so less may be
                // reported; a megabyte of full-size segments shows GSO frames and partial checksums got through.
                let received = (end?["sum_received"] as? [String: Any])?["bytes"] as? Int ?? 0
                #expect(received >= 1 << 20, "\(label): \(received) bytes")
            }
        }
    }
}

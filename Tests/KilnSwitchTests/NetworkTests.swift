import KilnTestSupport
import Foundation
import Glibc
import KilnSystem
import Testing
@testable import KilnSwitch

private func access(_ name: String, _ vlan: UInt16, _ address: String?) -> Lab.Host {
    Lab.Host(name: name, port: .init(name: name, vlan: vlan), address: address)
}

private func trunk(_ name: String, _ vlans: [UInt16]) -> Lab.Host {
    Lab.Host(name: name, port: .init(name: name, mode: .trunk, vlans: vlans), address: nil)
}

/// The switch moving real frames between network namespaces. Serialized: each test builds namespaces named
/// after the test process's pid, and tshark captures are CPU-heavy on a small machine.
@Suite(.serialized) struct NetworkTests {
    @Test func sameVLANHostsReachEachOtherAndOtherVLANsDoNot() throws {
        let lab = try Lab(hosts: [access("h1", 10, "10.0.0.1/24"), access("h2", 10, "10.0.0.2/24"),
                                  access("h3", 20, "10.0.0.3/24")],
                          extraPorts: [.init(name: "sw0", type: .tap, vlan: 10)])
        defer { lab.close() }
        try #require(lab.exec("sw", "ip addr add 10.0.0.254/24 dev sw0").status == 0)
        #expect(try lab.ping("h1", "10.0.0.2"))
        #expect(try lab.ping("h2", "10.0.0.1"))
        #expect(try lab.ping("h1", "10.0.0.254"), "the internal TAP port puts the switch's own stack in VLAN 10")
        #expect(try !lab.ping("h1", "10.0.0.3", count: 1))
        #expect(try !lab.ping("h3", "10.0.0.254", count: 1))
        let counters = try #require(lab.sw?.counters)
        #expect(counters[0].rxPackets > 0 && counters[1].txPackets > 0 && counters[3].txPackets > 0)
        #expect(counters[2].txPackets == 0, "nothing from VLAN 10 leaves the VLAN 20 port")
    }

    /// veth leaves TCP and UDP checksums to the "device" (CHECKSUM_PARTIAL); the switch completes them, or every
    /// segment it forwards arrives with a bad checksum (ping would pass, TCP would not). The internal TAP port, which
    /// has no offload, checks them too.
    @Test func tcpAndUDPWithChecksumOffloadCrossTheSwitch() throws {
        let lab = try Lab(hosts: [access("h1", 10, "10.0.0.1/24"), access("h2", 10, "10.0.0.2/24")],
                          extraPorts: [.init(name: "sw0", type: .tap, vlan: 10)])
        defer { lab.close() }
        try #require(lab.exec("sw", "ip addr add 10.0.0.254/24 dev sw0").status == 0)
        let server = "import socket; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); " +
            "u=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(('0.0.0.0', 7001)); u.settimeout(10); " +
            "s.bind(('0.0.0.0', 7000)); s.listen(1); s.settimeout(10); c,_=s.accept(); c.sendall(c.recv(100)[::-1]); c.close(); " +
            "d,a=u.recvfrom(100); u.sendto(d[::-1], a)"
        let client = "import socket; c=socket.create_connection((ADDR, 7000), timeout=5); c.sendall(b'checksum'); print(c.recv(100).decode()); " +
            "u=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(5); u.sendto(b'datagram', (ADDR, 7001)); print(u.recv(100).decode())"
        for (serverHost, address) in [("h2", "10.0.0.2"), ("sw", "10.0.0.254")] {
            let r = try sh(["bash", "-c", "timeout 20 ip netns exec \(lab.namespace(serverHost)) python3 -c \"\(server)\" & sleep 1; " +
                            "timeout 15 ip netns exec \(lab.namespace("h1")) python3 -c \"\(client.replacingOccurrences(of: "ADDR", with: "'\(address)'"))\"; " +
                            "s=$?; wait; exit $s"], timeout: 40)
            #expect(r.status == 0 && r.output.contains("muskcehc") && r.output.contains("margatad"), "to \(address): \(r.output)")
        }
    }

    /// veth hands the switch 64 KiB TCP segments (TSO/GSO on, the default): with their virtio-net headers they go
    /// out whole to a veth and are split where a device needs it, tagged on a trunk and untagged again.
    @Test func bulkTCPWithSegmentationOffloadCrossesTheSwitch() throws {
        let lab = try Lab(hosts: [access("h1", 10, "10.0.0.1/24"), access("h2", 10, "10.0.0.2/24"), trunk("trunk", [10, 20]),
                                  Lab.Host(name: "h3", port: .init(name: "h3", mode: .trunk, vlans: [10, 20]), address: nil)],
                          extraPorts: [.init(name: "sw0", type: .tap, vlan: 10)])
        defer { lab.close() }
        try #require(lab.exec("sw", "ip addr add 10.0.0.254/24 dev sw0").status == 0)
        // To another host (veth to veth) and to the box's own stack (the TAP port, which takes the header too).
        for (serverHost, address) in [("h2", "10.0.0.2"), ("sw", "10.0.0.254")] {
            let r = try sh(["bash", "-c", "timeout 40 ip netns exec \(lab.namespace(serverHost)) python3 \(Self.bulkScript) serve 7002 & sleep 1; " +
                            "timeout 30 ip netns exec \(lab.namespace("h1")) python3 \(Self.bulkScript) \(address) 7002; s=$?; wait; exit $s"],
                           timeout: 60)
            #expect(r.status == 0 && r.output.contains("got 4000000"), "to \(address): \(r.output)")
        }
        let c = try #require(lab.sw?.counters)
        #expect(c.allSatisfy { $0.txErrors == 0 }, "\(c)")
    }

    /// `serve PORT`: echoes one connection. `ADDRESS PORT`: sends 4 MB and counts what comes back.
    static let bulkScript: String = {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-switch-bulk-\(getpid()).py").path
        let text = """
        import socket, sys, threading
        if sys.argv[1] == "serve":
            s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("0.0.0.0", int(sys.argv[2]))); s.listen(1); s.settimeout(15)
            c, _ = s.accept(); c.settimeout(15)
            while True:
                b = c.recv(65536)
                if not b: break
                c.sendall(b)
            c.close(); sys.exit(0)
        d = b"x" * 4000000
        s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=20)
        def send():
            s.sendall(d); s.shutdown(socket.SHUT_WR)
        t = threading.Thread(target=send); t.start()
        n = 0
        while True:
            b = s.recv(65536)
            if not b: break
            n += len(b)
        t.join()
        print("got", n)

        """
        FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        return path
    }()

    /// A port's transmit ring (512 slots of 2 KiB; AF_XDP and the packet ring each) with more frames queued than it
    /// has slots and, among them, frames larger than a slot, which take the port's sendmmsg batch instead: every frame
    /// arrives, once, in the order queued, at the length queued. Runs a port on its own (no switch loop), so nothing
    /// sends in between.
    @Test(arguments: PortIO.TransmitRing.allCases)
    func transmitRingAndBatchKeepTheOrderFramesWereQueuedIn(_ kind: PortIO.TransmitRing) throws {
        let lab = try Lab(hosts: [access("h1", 10, nil), access("h2", 10, nil)], start: false)
        defer { lab.close() }
        for command in ["ip -n \(lab.namespace("sw")) link set h2 mtu 9000", "ip -n \(lab.namespace("h2")) link set eth0 mtu 9000"] {
            try #require(try sh(["bash", "-c", command]).status == 0)
        }
        let port = try NetworkNamespace.run(path: "/run/netns/\(lab.switchNamespace)") { try PortIO(ring: "h2", transmit: [kind]) }
        try #require(port.transmitRing == kind)
        let count = 1500
        let size = { (i: Int) in i % 5 == 4 ? 3000 : 60 }
        let onH2 = try lab.capture("h2", filter: "ether proto 0x88b5", fields: ["frame.len", "data.data"], seconds: 6,
                                   packets: count)
        // The batch sends frames from where they lie (as from a switch's RX ring), so each keeps its own bytes.
        var frames = [UInt8](repeating: 0, count: count * 3000)
        var lost = 0
        frames.withUnsafeMutableBytes { buffer in
            for i in 0..<count {
                let frame = buffer.baseAddress! + i * 3000
                for (offset, byte) in [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x88, 0xb5].enumerated() { frame.storeBytes(of: UInt8(byte), toByteOffset: offset, as: UInt8.self) }
                frame.storeBytes(of: UInt32(i).bigEndian, toByteOffset: 14, as: UInt32.self)
                lost += port.enqueue(frame, length: size(i), action: .asIs, tci: 0, vnet: nil)
            }
            lost += port.flush()
        }
        #expect(lost == 0)
        let lines = onH2.lines()
        try #require(lines.count == count, "h2 saw \(lines.count) frames: \(lines.prefix(5)) ... \(onH2.errors)")
        let got = lines.map { line -> (Int, Int) in
            let fields = line.split(separator: "|")
            return (Int(fields[0]) ?? -1, fields.count > 1 ? Int(fields[1].prefix(8), radix: 16) ?? -1 : -1)
        }
        let firstWrong = got.indices.first { got[$0].1 != $0 }
        #expect(firstWrong == nil, "frame \(firstWrong ?? 0) arrived as \(firstWrong.map { got[$0].1 } ?? 0): \(got.dropFirst(max(0, (firstWrong ?? 0) - 3)).prefix(8))")
        #expect(got.allSatisfy { $0.0 == size($0.1) }, "lengths: \(got.filter { $0.0 != size($0.1) }.prefix(10))")
    }

    @Test func trunkFramesCarryTheirVLANsTag() throws {
        let lab = try Lab(hosts: [access("h1", 10, "10.0.0.1/24"), access("h3", 20, "10.0.0.3/24"),
                                  trunk("trunk", [10, 20])])
        defer { lab.close() }
        let onTrunk = try lab.capture("trunk", filter: "ether proto 0x88b5 or vlan", fields: ["eth.src", "vlan.id"], seconds: 6)
        let onH3 = try lab.capture("h3", filter: "ether proto 0x88b5 or vlan", fields: ["eth.src", "vlan.id"], seconds: 6)
        try lab.send(from: "h1", dst: "ff:ff:ff:ff:ff:ff", src: "02:00:00:00:00:01", count: 3)
        try lab.send(from: "h3", dst: "ff:ff:ff:ff:ff:ff", src: "02:00:00:00:00:02", count: 2)
        // And the other way: tagged 20 on the trunk reaches h3 untagged, and h1 not at all.
        try lab.send(from: "trunk", dst: "ff:ff:ff:ff:ff:ff", src: "02:00:00:00:00:03", vid: 20, count: 4)
        let trunkLines = onTrunk.lines()
        #expect(trunkLines.filter { $0 == "02:00:00:00:00:01|10" }.count == 3, "trunk saw: \(trunkLines)")
        #expect(trunkLines.filter { $0 == "02:00:00:00:00:02|20" }.count == 2, "trunk saw: \(trunkLines)")
        #expect(trunkLines.filter { $0.hasPrefix("02:00:00:00:00:01|") || $0.hasPrefix("02:00:00:00:00:02|") }.count == 5)
        let h3Lines = onH3.lines()
        #expect(h3Lines.filter { $0 == "02:00:00:00:00:03|" }.count == 4, "h3 saw: \(h3Lines)")
        #expect(!h3Lines.contains { $0.hasPrefix("02:00:00:00:00:01") })
        let counters = try #require(lab.sw?.counters)
        #expect(counters[0].txPackets == 0, "h1 (VLAN 10) received none of the VLAN 20 frames")
    }

    @Test func floodsBroadcastAndUnknownUnicastWithinTheVLANOnly() throws {
        let lab = try Lab(hosts: [access("h1", 10, nil), access("h2", 10, nil), access("h3", 20, nil)])
        defer { lab.close() }
        let onH2 = try lab.capture("h2", filter: "ether proto 0x88b5", fields: ["eth.dst"], seconds: 5)
        let onH3 = try lab.capture("h3", filter: "ether proto 0x88b5", fields: ["eth.dst"], seconds: 5)
        try lab.send(from: "h1", dst: "ff:ff:ff:ff:ff:ff", src: "02:00:00:00:00:01", count: 3)
        try lab.send(from: "h1", dst: "02:00:00:00:00:99", src: "02:00:00:00:00:01", count: 4)
        let h2 = onH2.lines()
        #expect(h2.filter { $0 == "ff:ff:ff:ff:ff:ff" }.count == 3, "h2 saw: \(h2); counters \(lab.sw?.counters ?? [])")
        #expect(h2.filter { $0 == "02:00:00:00:00:99" }.count == 4, "h2 saw: \(h2)")
        #expect(onH3.lines().isEmpty)
        let counters = try #require(lab.sw?.counters)
        #expect(counters[0].flooded == 7 && counters[2].txPackets == 0)
    }

    @Test func macMoveIsFollowed() throws {
        let lab = try Lab(hosts: [access("h1", 10, "10.0.0.1/24"), access("h2", 10, "10.0.0.2/24"),
                                  access("h4", 10, nil)])
        defer { lab.close() }
        let sw = try #require(lab.sw)
        #expect(try lab.ping("h2", "10.0.0.1"))
        #expect(sw.withCore { $0.table.lookup(vlan: 10, mac: Lab.mac(1), now: MonotonicClockNow()) } == 0)
        // The host behind h1 moves to port h4: same MAC, same address, h2's ARP cache unchanged.
        try #require(lab.exec("h1", "ip link set eth0 down").status == 0)
        try #require(lab.exec("h4", "ip link set eth0 address 02:00:00:00:00:01 && ip addr add 10.0.0.1/24 dev eth0").status == 0)
        try lab.send(from: "h4", dst: "ff:ff:ff:ff:ff:ff", src: "02:00:00:00:00:01", count: 1)
        #expect(eventually { sw.withCore { $0.table.lookup(vlan: 10, mac: Lab.mac(1), now: MonotonicClockNow()) } == 2 })
        #expect(try lab.ping("h2", "10.0.0.1"), "unicast to the moved MAC goes to its new port")
        #expect(sw.withCore { $0.table.moves } >= 1)
    }

    @Test func agedEntriesExpire() throws {
        let lab = try Lab(hosts: [access("h1", 10, "10.0.0.1/24"), access("h2", 10, "10.0.0.2/24")],
                          mac: .init(aging: 1))
        defer { lab.close() }
        let sw = try #require(lab.sw)
        #expect(try lab.ping("h1", "10.0.0.2", count: 1))
        let learned = sw.withCore { $0.table.entries().map(\.mac) }
        #expect(learned.contains(Lab.mac(1)) && learned.contains(Lab.mac(2)))
        // Housekeeping runs every second and removes what is older than the aging time.
        #expect(eventually { sw.withCore { $0.table.count } == 0 }, "entries left: \(sw.withCore { $0.table.entries() })")
        #expect(try lab.ping("h1", "10.0.0.2", count: 1))
        #expect(sw.withCore { $0.table.lookup(vlan: 10, mac: Lab.mac(2), now: MonotonicClockNow()) } == 1)
    }

    @Test func randomSourceFloodStaysWithinTableAndPortBounds() throws {
        let lab = try Lab(hosts: [access("h1", 10, nil), access("h2", 10, "10.0.0.2/24"), access("h3", 10, "10.0.0.3/24"),
                                  access("h4", 10, nil)],
                          mac: .init(limit: 40, perPort: 16, aging: 300))
        defer { lab.close() }
        let sw = try #require(lab.sw)
        try lab.send(from: "h1", dst: "ff:ff:ff:ff:ff:ff", src: "random", count: 2000)
        try lab.send(from: "h4", dst: "ff:ff:ff:ff:ff:ff", src: "random", count: 2000)
        #expect(eventually { sw.counters[0].rxPackets >= 2000 && sw.counters[3].rxPackets >= 2000 })
        let (perPort, total, refused) = sw.withCore { ($0.table.count(port: 0) + $0.table.count(port: 3), $0.table.count, $0.table.refused) }
        #expect(sw.withCore { $0.table.count(port: 0) } == 16 && sw.withCore { $0.table.count(port: 3) } == 16)
        #expect(perPort == 32 && total == 32 && refused >= 3900)
        // Two flooding ports hold 32 of 40 entries: other hosts still get learned and reach each other.
        #expect(try lab.ping("h2", "10.0.0.3"))
        #expect(sw.withCore { $0.table.count } == 34)
    }

    @Test func mirrorPortReceivesCopiesOfBothDirections() throws {
        let lab = try Lab(hosts: [access("h1", 10, "10.0.0.1/24"), access("h2", 10, "10.0.0.2/24"),
                                  access("h3", 10, "10.0.0.3/24"), access("span", 1, nil)],
                          mirror: [.init(sources: ["h1"], destination: "span")])
        defer { lab.close() }
        let onSpan = try lab.capture("span", filter: "icmp", fields: ["ip.src", "icmp.type"], seconds: 6)
        let pinged = try lab.exec("h1", "ping -n -c 3 -i 0.2 -W 2 10.0.0.2")
        #expect(pinged.status == 0)
        #expect(try lab.ping("h2", "10.0.0.3", count: 2))  // not mirrored: neither end is h1
        let lines = onSpan.lines()
        let diagnosis = "span saw \(lines); ping said \(pinged.output); counters \(lab.sw?.counters ?? [])"
        #expect(lines.filter { $0 == "10.0.0.1|8" }.count == 3, "\(diagnosis)")
        #expect(lines.filter { $0 == "10.0.0.2|0" }.count == 3, "\(diagnosis)")
        #expect(lines.count == 6, "\(diagnosis)")
    }

    @Test func exportedIPFIXDecodesWithTheRightCounts() throws {
        let lab = try Lab(hosts: [access("h1", 10, "10.0.0.1/24"), access("h2", 10, "10.0.0.2/24")],
                          export: .init(collector: "127.0.0.1:4739", interval: 3600, domain: 77))
        defer { lab.close() }
        #expect(try lab.ping("h1", "10.0.0.2", count: 4, size: 100))
        let fields = ["cflow.od_id", "cflow.srcaddr", "cflow.dstaddr", "cflow.protocol", "cflow.packets", "cflow.octets",
                      "cflow.vlanid", "cflow.inputint"]
        let (columns, output) = try exportAndDecode(lab, fields: fields)
        // One record per direction, 4 frames of 14 + 20 + 8 + 100 = 142 bytes each; ICMP has no ports.
        #expect(columns[0] == ["77"])
        let records = Set((0..<columns[1].count).map { i in columns[1...].map { $0.count > i ? $0[i] : "?" }.joined(separator: " ") })
        #expect(records == ["10.0.0.1 10.0.0.2 1 4 568 10 0", "10.0.0.2 10.0.0.1 1 4 568 10 1"], "tshark decoded: \(output)")
    }

    /// Bulk TCP crosses the switch as GSO super-frames (see the test above); flow records count the segments they
    /// stand for. Each host's own TCP counters say how many segments it sent (TcpOutSegs counts every segment of a
    /// super-frame), and every one of them crossed the switch, so each direction's record must match its sender.
    @Test func exportedIPFIXCountsTheSegmentsOfGSOSuperFrames() throws {
        let lab = try Lab(hosts: [access("h1", 10, "10.0.0.1/24"), access("h2", 10, "10.0.0.2/24")],
                          export: .init(collector: "127.0.0.1:4739", interval: 3600, domain: 78))
        defer { lab.close() }
        let r = try sh(["bash", "-c", "timeout 40 ip netns exec \(lab.namespace("h2")) python3 \(Self.bulkScript) serve 7003 & sleep 1; " +
                        "timeout 30 ip netns exec \(lab.namespace("h1")) python3 \(Self.bulkScript) 10.0.0.2 7003; s=$?; wait; exit $s"],
                       timeout: 60)
        try #require(r.status == 0 && r.output.contains("got 4000000"), "bulk echo: \(r.output)")
        // TcpOutSegs and TcpRetransSegs of each host's namespace (/proc/net/snmp is per namespace).
        func tcp(_ host: String) throws -> (out: Int, retransmitted: Int) {
            let snmp = try lab.exec(host, "awk '/^Tcp:/ { if (!h) { for (i = 1; i <= NF; i++) n[$i] = i; h = 1 } else print $n[\"OutSegs\"], $n[\"RetransSegs\"] }' /proc/net/snmp")
            let v = snmp.output.split(whereSeparator: \.isWhitespace).compactMap { Int($0) }
            guard snmp.status == 0, v.count == 2 else { throw TestFailure("TCP counters of \(host): \(snmp.output)") }
            return (v[0], v[1])
        }
        let sent = ["10.0.0.1": try tcp("h1"), "10.0.0.2": try tcp("h2")]
        let (columns, output) = try exportAndDecode(lab, fields: ["cflow.srcaddr", "cflow.protocol", "cflow.packets", "cflow.octets"])
        var seen = 0
        for i in 0..<columns[0].count where columns[1].count > i && columns[1][i] == "6" {
            let source = columns[0][i]
            let packets = try #require(Int(columns[2][i])), bytes = try #require(Int(columns[3][i]))
            let tcp = try #require(sent[source], "a flow from \(source): \(output)")
            seen += 1
            // Every segment the sender sent crossed the switch once; a retransmission is a segment of its own, but
            // the switch never saw a segment whose first copy was lost before it.
            #expect(packets <= tcp.out && packets >= tcp.out - tcp.retransmitted,
                    "\(source): IPFIX says \(packets) packets, its TCP sent \(tcp.out) (\(tcp.retransmitted) again)")
            #expect(packets > 4_000_000 / 65536 * 4, "far more than one per 64 KiB super-frame")
            // On the wire: 4,000,000 bytes of payload, 14 + 20 + 32 bytes of headers per segment (TCP timestamps on),
            // 8 more for the SYN's or SYN-ACK's options; retransmissions and SACK blocks only add to that.
            let expected = 4_000_000 + 66 * packets + 8
            if tcp.retransmitted == 0 {
                #expect(bytes == expected, "\(source): \(bytes) bytes for \(packets) packets")
            } else {
                #expect(bytes >= expected, "\(source): \(bytes) bytes for \(packets) packets")
            }
        }
        #expect(seen == 2, "one TCP record per direction: \(output)")
    }

    /// Binds a collector on 127.0.0.1:4739 in the switch's namespace, has the switch export now and decodes the
    /// message with tshark: one column per field, each a list (one entry per record).
    private func exportAndDecode(_ lab: Lab, fields: [String]) throws -> (columns: [[String]], output: String) {
        let sw = try #require(lab.sw)
        // The collector: a UDP socket bound in the switch's namespace before the export, read with a deadline.
        let collector = try NetworkNamespace.run(path: "/run/netns/\(lab.switchNamespace)") { () throws -> Int32 in
            let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = UInt16(4739).bigEndian
            sin.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
            let bound = withUnsafePointer(to: &sin) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard fd >= 0, bound == 0 else { throw TestFailure("collector socket: errno \(errno)") }
            return fd
        }
        defer { Glibc.close(collector) }
        var deadline = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(collector, SOL_SOCKET, SO_RCVTIMEO, &deadline, socklen_t(MemoryLayout<timeval>.size))
        try sw.exportNow()
        var message = [UInt8](repeating: 0, count: 65536)
        let n = recv(collector, &message, message.count, 0)
        try #require(n > 0, "no IPFIX message reached the collector")
        let dir = try temporaryDirectory("ipfix-export")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = dir + "/export.pcap"
        FileManager.default.createFile(atPath: file, contents: Data(pcapOfUDP([Array(message[0..<n])])))
        let r = try sh(["tshark", "-n", "-r", file, "-d", "udp.port==4739,cflow", "-T", "fields",
                        "-E", "separator=|", "-E", "aggregator=,"] + fields.flatMap { ["-e", $0] })
        #expect(r.status == 0, "tshark: \(r.output)")
        let columns = (r.output.split(separator: "\n").first { $0.contains("|") } ?? "").split(separator: "|", omittingEmptySubsequences: false)
            .map { $0.split(separator: ",").map(String.init) }
        try #require(columns.count == fields.count, "tshark decoded: \(r.output)")
        return (columns, r.output)
    }
}

func MonotonicClockNow() -> UInt64 { MonotonicClock.nanoseconds() }

import Testing
@testable import KilnSwitch

/// Builds a frame: destination, source, optional 802.1Q tag, EtherType, payload padded to 60 bytes.
func frame(dst: UInt64, src: UInt64, vid: UInt16? = nil, type: UInt16 = 0x0800, payload: [UInt8] = []) -> [UInt8] {
    var b: [UInt8] = []
    for shift in stride(from: 40, through: 0, by: -8) { b.append(UInt8((dst >> UInt64(shift)) & 0xff)) }
    for shift in stride(from: 40, through: 0, by: -8) { b.append(UInt8((src >> UInt64(shift)) & 0xff)) }
    if let vid { b += [0x81, 0x00, UInt8(vid >> 8), UInt8(vid & 0xff)] }
    b += [UInt8(type >> 8), UInt8(type & 0xff)] + payload
    while b.count < 60 { b.append(0) }
    return b
}

func header(_ bytes: [UInt8], stripped: UInt16? = nil) -> FrameHeader {
    bytes.withUnsafeBytes { FrameHeader($0.baseAddress!, length: $0.count, strippedTCI: stripped)! }
}

let hostA: UInt64 = 0x02_00_00_00_00_0a
let hostB: UInt64 = 0x02_00_00_00_00_0b
let hostC: UInt64 = 0x02_00_00_00_00_0c
let second: UInt64 = 1_000_000_000

/// Ports: 0 access 10, 1 access 10, 2 access 20, 3 trunk [10, 20] native none, 4 trunk [20] native 10.
func fiveports(mirrors: [(sources: [Int], destination: Int)] = []) -> SwitchCore {
    SwitchCore(modes: [.access(vlan: 10), .access(vlan: 10), .access(vlan: 20), .trunk(allowed: [10, 20], native: nil),
                       .trunk(allowed: [20], native: 10)] + (mirrors.isEmpty ? [] : [.access(vlan: 1)]),
               mirrors: mirrors, macLimit: 64, macPortLimit: 16, agingSeconds: 5)
}

@Suite struct ForwardingTests {
    @Test func unknownUnicastFloodsWithinTheVLANButNotBack() {
        var core = fiveports()
        let d = core.forward(port: 0, header: header(frame(dst: hostB, src: hostA)), length: 60, now: 0)
        #expect(d.vlan == 10)
        #expect(d.ports == 0b11010)  // port 1 (access 10), port 3 (trunk), port 4 (native 10); never port 0 or 2
        #expect(core.counters[0].flooded == 1)
    }

    @Test func knownUnicastGoesToOnePort() {
        var core = fiveports()
        _ = core.forward(port: 1, header: header(frame(dst: Ethernet.broadcast, src: hostB)), length: 60, now: 0)
        let d = core.forward(port: 0, header: header(frame(dst: hostB, src: hostA)), length: 60, now: 1)
        #expect(d.ports == 0b10)
        #expect(core.counters[1].txPackets == 1)
        #expect(core.counters[0].rxPackets == 1 && core.counters[0].rxBytes == 60)
    }

    @Test func destinationOnIngressPortIsDropped() {
        var core = fiveports()
        _ = core.forward(port: 0, header: header(frame(dst: Ethernet.broadcast, src: hostB)), length: 60, now: 0)
        let d = core.forward(port: 0, header: header(frame(dst: hostB, src: hostA)), length: 60, now: 1)
        #expect(d.ports == 0)
        #expect(core.counters[0].rxDropped == 1)
    }

    @Test func vlansAreSeparateAddressSpaces() {
        var core = fiveports()
        _ = core.forward(port: 1, header: header(frame(dst: Ethernet.broadcast, src: hostB)), length: 60, now: 0)
        // Same MAC B is unknown in VLAN 20: flooded in 20 only (port 3 tagged, port 4 tagged).
        let d = core.forward(port: 2, header: header(frame(dst: hostB, src: hostC)), length: 60, now: 1)
        #expect(d.vlan == 20)
        #expect(d.ports == 0b11000)
        #expect(core.table.lookup(vlan: 10, mac: hostB, now: 1) == 1)
        #expect(core.table.lookup(vlan: 20, mac: hostB, now: 1) == nil)
    }

    @Test func trunkClassifiesByTagAndDropsDisallowedVLANs() {
        var core = fiveports()
        #expect(core.forward(port: 3, header: header(frame(dst: Ethernet.broadcast, src: hostA, vid: 20)), length: 64, now: 0).vlan == 20)
        // Kernel-stripped tag (TP_STATUS_VLAN_VALID) counts the same as one in the buffer.
        let stripped = core.forward(port: 3, header: header(frame(dst: Ethernet.broadcast, src: hostA), stripped: 0x2014),
                                    length: 60, now: 0)
        #expect(stripped.vlan == 20 && stripped.ports == 0b10100)
        #expect(core.forward(port: 3, header: header(frame(dst: Ethernet.broadcast, src: hostA, vid: 30)), length: 64, now: 0) == .drop)
        // Untagged on a trunk without a native VLAN is dropped; with one it belongs there.
        #expect(core.forward(port: 3, header: header(frame(dst: Ethernet.broadcast, src: hostA)), length: 60, now: 0) == .drop)
        #expect(core.forward(port: 4, header: header(frame(dst: Ethernet.broadcast, src: hostC)), length: 60, now: 0).vlan == 10)
        #expect(core.counters[3].rxDropped == 2)
    }

    @Test func accessPortAcceptsUntaggedPriorityTaggedAndOwnVLANOnly() {
        var core = fiveports()
        #expect(core.forward(port: 0, header: header(frame(dst: Ethernet.broadcast, src: hostA, vid: 0)), length: 64, now: 0).vlan == 10)
        #expect(core.forward(port: 0, header: header(frame(dst: Ethernet.broadcast, src: hostA, vid: 10)), length: 64, now: 0).vlan == 10)
        #expect(core.forward(port: 0, header: header(frame(dst: Ethernet.broadcast, src: hostA, vid: 20)), length: 64, now: 0) == .drop)
    }

    @Test func tagActionsPushPopAndReplace() {
        let core = fiveports()
        #expect(core.tagAction(port: 3, vlan: 10, tagInBuffer: false, bufferVID: 0) == .push)
        #expect(core.tagAction(port: 3, vlan: 10, tagInBuffer: true, bufferVID: 10) == .asIs)
        #expect(core.tagAction(port: 3, vlan: 10, tagInBuffer: true, bufferVID: 0) == .replace)
        #expect(core.tagAction(port: 0, vlan: 10, tagInBuffer: true, bufferVID: 10) == .pop)
        #expect(core.tagAction(port: 0, vlan: 10, tagInBuffer: false, bufferVID: 0) == .asIs)
        #expect(core.tagAction(port: 4, vlan: 10, tagInBuffer: true, bufferVID: 10) == .pop)  // native VLAN leaves untagged
        #expect(core.tagAction(port: 4, vlan: 20, tagInBuffer: false, bufferVID: 0) == .push)
    }

    @Test func mirrorCopiesBothDirectionsAndTakesNoPartInSwitching() {
        var core = fiveports(mirrors: [(sources: [0], destination: 5)])
        let rx = core.forward(port: 0, header: header(frame(dst: Ethernet.broadcast, src: hostA)), length: 60, now: 0)
        #expect(rx.mirrors == 1 << 5)
        #expect(rx.ports & (1 << 5) == 0)
        let tx = core.forward(port: 1, header: header(frame(dst: hostA, src: hostB)), length: 60, now: 1)
        #expect(tx.ports == 1 && tx.mirrors == 1 << 5)
        let other = core.forward(port: 2, header: header(frame(dst: Ethernet.broadcast, src: hostC)), length: 60, now: 1)
        #expect(other.mirrors == 0)
        #expect(core.forward(port: 5, header: header(frame(dst: Ethernet.broadcast, src: hostC)), length: 60, now: 1) == .drop)
    }

    @Test func parsesTaggedAndUntaggedHeaders() {
        let h = header(frame(dst: hostB, src: hostA, vid: 0x2005, type: 0x86dd))
        #expect(h.tagInBuffer && h.vid == 5 && h.tci == 0x2005 && h.etherType == 0x86dd && h.payloadOffset == 18)
        let s = header(frame(dst: hostB, src: hostA), stripped: 7)
        #expect(!s.tagInBuffer && s.vid == 7 && s.payloadOffset == 14)
        #expect([UInt8](repeating: 0, count: 13).withUnsafeBytes { FrameHeader($0.baseAddress!, length: 13) } == nil)
        #expect(Ethernet.formatMAC(Ethernet.parseMAC("52:54:00:ab:cd:ef")!) == "52:54:00:ab:cd:ef")
    }
}

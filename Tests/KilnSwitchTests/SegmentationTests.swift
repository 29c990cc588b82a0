import Testing
@testable import KilnSwitch

/// GSO super-frames count as the segments they stand for; the expected numbers are the segments' own frame
/// lengths added up by hand.
@Suite struct SegmentationTests {
    /// A virtio-net header: flags, gso_type, hdr_len, gso_size, csum_start, csum_offset (little endian).
    func vnet(flags: UInt8 = 1, type: UInt8, hdrLen: UInt16 = 0, size: UInt16, start: UInt16, offset: UInt16) -> [UInt8] {
        [flags, type] + [hdrLen, size, start, offset].flatMap { [UInt8($0 & 0xff), UInt8($0 >> 8)] }
    }

    /// An IPv4 or IPv6 packet with a TCP header of `tcpLength` bytes (or an 8-byte UDP header) and `payload` bytes.
    func l3(v6: Bool, proto: UInt8, tcpLength: Int = 32, payload: Int) -> [UInt8] {
        let l4Length = proto == 6 ? tcpLength : 8
        var l4 = [UInt8](repeating: 0, count: l4Length)
        if proto == 6 { l4[12] = UInt8(tcpLength / 4) << 4 }
        let body = l4 + [UInt8](repeating: 0x78, count: payload)
        if v6 {
            return [0x60, 0, 0, 0, UInt8(body.count >> 8), UInt8(body.count & 0xff), proto, 64]
                + [UInt8](repeating: 0, count: 32) + body
        }
        let total = 20 + body.count
        return [0x45, 0, UInt8(total >> 8), UInt8(total & 0xff), 0, 0, 0x40, 0, 64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2] + body
    }

    func count(_ f: [UInt8], _ header: [UInt8]?) -> (packets: Int, bytes: Int) {
        f.withUnsafeBytes { raw in
            let h = FrameHeader(raw.baseAddress!, length: raw.count)!
            guard let header else { return Segmentation.wireCount(raw.baseAddress!, length: raw.count, header: h, vnet: nil) }
            return header.withUnsafeBytes { Segmentation.wireCount(raw.baseAddress!, length: raw.count, header: h, vnet: $0.baseAddress!) }
        }
    }

    @Test func tcpOverIPv4CountsEachSegmentWithItsHeaders() {
        // 14 + 20 + 32 bytes of headers and 4000 of payload in 1448-byte segments: 1448 + 1448 + 1104.
        let f = frame(dst: hostB, src: hostA, payload: l3(v6: false, proto: 6, payload: 4000))
        #expect(f.count == 4066)
        let r = count(f, vnet(type: 1, hdrLen: 4066, size: 1448, start: 34, offset: 16))
        #expect(r.packets == 3)
        #expect(r.bytes == (66 + 1448) + (66 + 1448) + (66 + 1104))
        // ECN flag set, same count; hdr_len (the kernel's linear length) plays no part.
        #expect(count(f, vnet(type: 0x81, hdrLen: 128, size: 1448, start: 34, offset: 16)) == r)
        // Exactly two full segments.
        let g = frame(dst: hostB, src: hostA, payload: l3(v6: false, proto: 6, payload: 2896))
        #expect(count(g, vnet(type: 1, size: 1448, start: 34, offset: 16)) == (2, 2 * (66 + 1448)))
    }

    @Test func tcpOverIPv6InATaggedFrameAndWithoutACsumStart() {
        // 18 (tagged) + 40 + 20 bytes of headers and 3000 of payload in 1000-byte segments.
        let f = frame(dst: hostB, src: hostA, vid: 10, type: 0x86dd, payload: l3(v6: true, proto: 6, tcpLength: 20, payload: 3000))
        #expect(count(f, vnet(type: 4, size: 1000, start: 58, offset: 16)) == (3, 3 * (78 + 1000)))
        // No NEEDS_CSUM flag: the transport header is found from the IP header instead.
        #expect(count(f, vnet(flags: 0, type: 4, size: 1000, start: 0, offset: 0)) == (3, 3 * (78 + 1000)))
    }

    @Test func udpSegmentationRepeatsTheUDPHeader() {
        // 14 + 20 + 8 bytes of headers and 2500 of payload in 1200-byte datagrams: 1200 + 1200 + 100.
        let f = frame(dst: hostB, src: hostA, payload: l3(v6: false, proto: 17, payload: 2500))
        #expect(count(f, vnet(type: 5, size: 1200, start: 34, offset: 6)) == (3, 3 * 42 + 2500))
    }

    @Test func ordinaryAndUnreadableFramesCountAsThemselves() {
        let f = frame(dst: hostB, src: hostA, payload: l3(v6: false, proto: 6, payload: 100))
        #expect(count(f, nil) == (1, f.count))
        #expect(count(f, vnet(type: 0, size: 0, start: 34, offset: 16)) == (1, f.count), "gso_type NONE")
        #expect(count(f, vnet(type: 1, size: 0, start: 34, offset: 16)) == (1, f.count), "gso_size 0")
        #expect(count(f, vnet(type: 1, size: 1448, start: 34, offset: 16)) == (1, f.count), "payload within one segment")
        #expect(count(f, vnet(type: 9, size: 10, start: 34, offset: 16)) == (1, f.count), "an unknown gso_type")
        let arp = frame(dst: hostB, src: hostA, type: 0x0806, payload: [UInt8](repeating: 0, count: 28))
        #expect(count(arp, vnet(flags: 0, type: 1, size: 10, start: 0, offset: 0)) == (1, arp.count), "no IP header")
        // A TCP header length field pointing past the frame.
        var bad = frame(dst: hostB, src: hostA, payload: l3(v6: false, proto: 6, tcpLength: 20, payload: 0))
        bad[34 + 12] = 0xf0
        #expect(count(bad, vnet(type: 1, size: 10, start: 34, offset: 16)) == (1, bad.count))
    }

    @Test func flowTableAddsSegmentCounts() {
        var t = FlowTable(capacity: 1)
        var k = FlowKey(); k.proto = 6
        t.account(k, packets: 3, bytes: 4198, nowMilliseconds: 1)
        t.account(k, bytes: 66, nowMilliseconds: 2)
        k.sourcePort = 1
        t.account(k, packets: 5, bytes: 500, nowMilliseconds: 3)
        var records: [FlowRecord] = []
        t.drain { records.append($0) }
        #expect(records.map(\.packets) == [4] && records.map(\.bytes) == [4264])
        #expect(t.untracked == 5, "a flow the full table could not hold counts its segments as untracked packets")
    }
}

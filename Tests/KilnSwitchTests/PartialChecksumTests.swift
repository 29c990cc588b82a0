import Testing
@testable import KilnSwitch

/// Completing a checksum the sender left to the device: the result must equal the checksum computed from scratch
/// over pseudo-header and segment (RFC 793 / 768 / 8200), for TCP and UDP, IPv4 and IPv6, tagged or not.
struct PartialChecksumTests {
    static func sum(_ bytes: [UInt8]) -> UInt32 {
        var s: UInt32 = 0
        var i = 0
        while i + 1 < bytes.count { s += UInt32(bytes[i]) << 8 | UInt32(bytes[i + 1]); i += 2 }
        if i < bytes.count { s += UInt32(bytes[i]) << 8 }
        return s
    }
    static func fold(_ s: UInt32) -> UInt16 {
        var s = s
        while s >> 16 != 0 { s = (s & 0xffff) + (s >> 16) }
        return UInt16(s)
    }

    /// A frame with `segment` after an IP header; returns the frame with the field holding the pseudo-header sum
    /// (what a stack using checksum offload sends) and the checksum a full computation gives.
    func frame(v6: Bool, proto: UInt8, tagged: Bool, segment: [UInt8]) -> (partial: [UInt8], expected: UInt16, field: Int) {
        let src: [UInt8] = v6 ? [0x20, 0x01, 0x0d, 0xb8] + Array(repeating: 0, count: 11) + [1] : [10, 0, 0, 1]
        let dst: [UInt8] = v6 ? [0x20, 0x01, 0x0d, 0xb8] + Array(repeating: 0, count: 11) + [2] : [10, 0, 0, 2]
        let len = segment.count
        let pseudo: [UInt8] = v6 ? src + dst + [0, 0, UInt8(len >> 8), UInt8(len & 0xff), 0, 0, 0, proto]
                                 : src + dst + [0, proto, UInt8(len >> 8), UInt8(len & 0xff)]
        let ip: [UInt8] = v6 ? [0x60, 0, 0, 0, UInt8(len >> 8), UInt8(len & 0xff), proto, 64] + src + dst
                             : [0x45, 0, UInt8((20 + len) >> 8), UInt8((20 + len) & 0xff), 0, 0, 0x40, 0, 64, proto, 0, 0] + src + dst
        var l2: [UInt8] = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]
        if tagged { l2 += [0x81, 0x00, 0x00, 0x0a] }
        l2 += v6 ? [0x86, 0xdd] : [0x08, 0x00]
        let offset = proto == 6 ? 16 : 6
        var full = segment
        full[offset] = 0; full[offset + 1] = 0
        var expected = ~Self.fold(Self.sum(pseudo) + Self.sum(full))
        if proto == 17 && expected == 0 { expected = 0xffff }
        var partial = segment
        let seed = Self.fold(Self.sum(pseudo))
        partial[offset] = UInt8(seed >> 8); partial[offset + 1] = UInt8(seed & 0xff)
        var bytes = l2 + ip + partial
        while bytes.count < 60 { bytes.append(0) }  // Ethernet padding must not enter the sum
        return (bytes, expected, l2.count + ip.count + offset)
    }

    @Test(arguments: [(false, UInt8(6), false), (false, 17, false), (true, 6, false), (true, 17, true), (false, 6, true)])
    func completesLikeAFullComputation(v6: Bool, proto: UInt8, tagged: Bool) {
        // An odd-length segment exercises the padding byte of the sum.
        var segment: [UInt8] = proto == 6 ? [0x9c, 0x40, 0x1b, 0x58, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]
                                          : [0x30, 0x39, 0x00, 0x35, 0, 0, 0, 0]
        if proto == 17 { segment[4] = 0; segment[5] = 11 }
        segment += [0x68, 0x65, 0x6c]
        if proto == 17 { segment[5] = UInt8(segment.count) }
        var (bytes, expected, field) = frame(v6: v6, proto: proto, tagged: tagged, segment: segment)
        let length = bytes.count
        bytes.withUnsafeMutableBytes { PartialChecksum.complete($0.baseAddress!, length: length, strippedTCI: false) }
        #expect(UInt16(bytes[field]) << 8 | UInt16(bytes[field + 1]) == expected)
    }

    @Test func leavesOtherFramesAlone() {
        var arp = frame(v6: false, proto: 6, tagged: false, segment: Array(repeating: 7, count: 20)).partial
        arp[12] = 0x08; arp[13] = 0x06
        let before = arp
        let length = arp.count
        arp.withUnsafeMutableBytes { PartialChecksum.complete($0.baseAddress!, length: length, strippedTCI: false) }
        #expect(arp == before)
        var icmp = frame(v6: false, proto: 1, tagged: false, segment: Array(repeating: 7, count: 20)).partial
        let icmpBefore = icmp
        icmp.withUnsafeMutableBytes { PartialChecksum.complete($0.baseAddress!, length: length, strippedTCI: false) }
        #expect(icmp == icmpBefore)
    }
}

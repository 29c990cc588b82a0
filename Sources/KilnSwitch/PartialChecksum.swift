/// Completes the TCP or UDP checksum of a frame its sender left to the device (CHECKSUM_PARTIAL, which the kernel
/// reports on a packet ring as TP_STATUS_CSUMNOTREADY): a local stack sending over veth, or a host sending through a
/// virtio NIC with checksum offload. The checksum field then holds the pseudo-header sum, so the device's job — and
/// here the switch's — is the one's complement sum from the transport header to the end of the IP payload, stored
/// inverted (RFC 1071). The switch does it for single frames so their bytes are right on every egress, mirror copies
/// and any port without a virtio-net header included; without it such TCP and UDP segments arrived corrupt.
public enum PartialChecksum {
    /// Finishes the checksum in place and returns true; frames that are not IPv4/IPv6 TCP or UDP (or are cut short)
    /// are left alone (false). `strippedTCI` is true when the kernel removed the 802.1Q tag into metadata.
    @inline(__always) @discardableResult
    public static func complete(_ p: UnsafeMutableRawPointer, length: Int, strippedTCI: Bool) -> Bool {
        guard let header = FrameHeader(UnsafeRawPointer(p), length: length, strippedTCI: strippedTCI ? 0 : nil) else { return false }
        let o = header.payloadOffset
        let start: Int, end: Int, proto: UInt8
        switch header.etherType {
        case Ethernet.typeIPv4:
            guard length >= o + 20 else { return false }
            let ihl = Int(p.load(fromByteOffset: o, as: UInt8.self) & 0x0f) * 4
            guard ihl >= 20, Ethernet.u16(UnsafeRawPointer(p), at: o + 6) & 0x3fff == 0 else { return false }  // no fragments
            proto = p.load(fromByteOffset: o + 9, as: UInt8.self)
            start = o + ihl
            end = o + Int(Ethernet.u16(UnsafeRawPointer(p), at: o + 2))
        case Ethernet.typeIPv6:
            guard length >= o + 40 else { return false }
            proto = p.load(fromByteOffset: o + 6, as: UInt8.self)
            start = o + 40
            end = start + Int(Ethernet.u16(UnsafeRawPointer(p), at: o + 4))
        default:
            return false
        }
        let field: Int
        switch proto {
        case 6: field = start + 16
        case 17: field = start + 6
        default: return false
        }
        guard end <= length, field + 2 <= end else { return false }
        var sum: UInt32 = 0
        var i = start
        while i + 1 < end {
            sum &+= UInt32(p.load(fromByteOffset: i, as: UInt8.self)) << 8 | UInt32(p.load(fromByteOffset: i + 1, as: UInt8.self))
            i += 2
        }
        if i < end { sum &+= UInt32(p.load(fromByteOffset: i, as: UInt8.self)) << 8 }
        while sum >> 16 != 0 { sum = (sum & 0xffff) &+ (sum >> 16) }
        var check = ~UInt16(truncatingIfNeeded: sum)
        if proto == 17 && check == 0 { check = 0xffff }  // UDP: 0 means "no checksum"
        p.storeBytes(of: UInt8(check >> 8), toByteOffset: field, as: UInt8.self)
        p.storeBytes(of: UInt8(check & 0xff), toByteOffset: field + 1, as: UInt8.self)
        return true
    }
}

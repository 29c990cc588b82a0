/// What a frame stands for on the wire, for flow accounting.
///
/// Ports carry virtio-net headers, so a TCP or UDP sender's segmentation offload hands the switch GSO super-frames
/// (up to 64 KiB) that a device cuts into segments of `gso_size` payload bytes, each with a copy of the headers,
/// only where it has to. Flow records count those segments, as a switch on the wire would see them, not the one
/// super-frame.
public enum Segmentation {
    /// virtio_net_hdr gso_type values (virtio spec §5.1.6; the high bit, ECN, is masked off).
    static let gsoTCPv4: UInt8 = 1
    static let gsoUDP: UInt8 = 3
    static let gsoTCPv6: UInt8 = 4
    static let gsoUDPL4: UInt8 = 5

    /// Packets and bytes (frame lengths, as for a single frame) that the frame of `length` bytes at `p` is on the
    /// wire. `vnet` is its virtio-net header (flags, gso_type, hdr_len, gso_size, csum_start, csum_offset; little
    /// endian) or nil. A frame without GSO, or whose headers cannot be read, counts as itself: 1 and `length`.
    @inline(__always)
    public static func wireCount(_ p: UnsafeRawPointer, length: Int, header: FrameHeader,
                                 vnet: UnsafeRawPointer?) -> (packets: Int, bytes: Int) {
        guard let vnet else { return (1, length) }
        let type = vnet.load(fromByteOffset: 1, as: UInt8.self) & 0x7f
        let size = Int(littleEndian16(vnet, at: 4))
        guard type != 0, size > 0, let headers = headerLength(p, length: length, header: header, vnet: vnet, type: type),
              length > headers else { return (1, length) }
        let segments = (length - headers + size - 1) / size
        return (segments, length + (segments - 1) * headers)
    }

    /// Bytes of headers each segment repeats: layer 2 through the TCP header (TCP), the UDP header (UDP_L4) or
    /// the IP header (UDP fragmentation offload, whose fragments carry the UDP header in the first one's payload).
    /// The transport header starts at csum_start when the checksum is left to the device (always so for GSO);
    /// hdr_len is not used: the kernel fills it with the frame's linear length, not its header length.
    @inline(__always)
    static func headerLength(_ p: UnsafeRawPointer, length: Int, header: FrameHeader, vnet: UnsafeRawPointer,
                             type: UInt8) -> Int? {
        let o = header.payloadOffset
        var l4: Int
        let start = Int(littleEndian16(vnet, at: 6))
        if vnet.load(fromByteOffset: 0, as: UInt8.self) & 1 != 0, start > o, start < length {
            l4 = start
        } else if header.etherType == Ethernet.typeIPv4, length >= o + 20 {
            l4 = o + Int(p.load(fromByteOffset: o, as: UInt8.self) & 0x0f) * 4
        } else if header.etherType == Ethernet.typeIPv6, length >= o + 40 {
            l4 = o + 40
        } else {
            return nil
        }
        switch type {
        case gsoTCPv4, gsoTCPv6:
            guard length >= l4 + 20 else { return nil }
            let tcp = Int(p.load(fromByteOffset: l4 + 12, as: UInt8.self) >> 4) * 4
            return tcp >= 20 && length >= l4 + tcp ? l4 + tcp : nil
        case gsoUDPL4:
            return length >= l4 + 8 ? l4 + 8 : nil
        case gsoUDP:
            return l4
        default:
            return nil
        }
    }

    @inline(__always)
    static func littleEndian16(_ p: UnsafeRawPointer, at offset: Int) -> UInt16 {
        UInt16(p.load(fromByteOffset: offset, as: UInt8.self)) | UInt16(p.load(fromByteOffset: offset + 1, as: UInt8.self)) << 8
    }
}

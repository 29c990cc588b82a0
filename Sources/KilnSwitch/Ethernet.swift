/// Reading Ethernet and 802.1Q headers straight out of a frame buffer, without copying.
///
/// MAC addresses are handled as the low 48 bits of a `UInt64` in network order (first byte highest), so a
/// table key is one integer and the group bit is `0x0100_0000_0000`.
public enum Ethernet {
    public static let typeVLAN: UInt16 = 0x8100
    public static let typeQinQ: UInt16 = 0x88a8
    public static let typeIPv4: UInt16 = 0x0800
    public static let typeIPv6: UInt16 = 0x86dd
    public static let broadcast: UInt64 = 0xffff_ffff_ffff

    /// A 48-bit address read from six bytes at `offset`.
    @inline(__always)
    public static func mac(_ p: UnsafeRawPointer, at offset: Int) -> UInt64 {
        var v: UInt64 = 0
        for i in 0..<6 { v = v << 8 | UInt64(p.load(fromByteOffset: offset + i, as: UInt8.self)) }
        return v
    }

    /// A big-endian 16-bit field.
    @inline(__always)
    public static func u16(_ p: UnsafeRawPointer, at offset: Int) -> UInt16 {
        UInt16(p.load(fromByteOffset: offset, as: UInt8.self)) << 8 | UInt16(p.load(fromByteOffset: offset + 1, as: UInt8.self))
    }

    /// A big-endian 32-bit field.
    @inline(__always)
    public static func u32(_ p: UnsafeRawPointer, at offset: Int) -> UInt32 {
        UInt32(u16(p, at: offset)) << 16 | UInt32(u16(p, at: offset + 2))
    }

    /// True for group (broadcast and multicast) addresses: they are flooded and never learned.
    @inline(__always)
    public static func isGroup(_ mac: UInt64) -> Bool { mac & 0x0100_0000_0000 != 0 }

    /// Parses `52:54:00:12:34:56` into the integer form.
    public static func parseMAC(_ text: String) -> UInt64? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 6 else { return nil }
        var v: UInt64 = 0
        for part in parts {
            guard part.count == 2, let b = UInt8(part, radix: 16) else { return nil }
            v = v << 8 | UInt64(b)
        }
        return v
    }

    /// `52:54:00:12:34:56` for the integer form.
    public static func formatMAC(_ mac: UInt64) -> String {
        let hex: [Character] = Array("0123456789abcdef")
        var s = ""
        for i in stride(from: 40, through: 0, by: -8) {
            let b = Int((mac >> UInt64(i)) & 0xff)
            s.append(hex[b >> 4]); s.append(hex[b & 15])
            if i > 0 { s.append(":") }
        }
        return s
    }
}

/// The header fields of one frame the switch needs, located in place.
public struct FrameHeader: Equatable, Sendable {
    public var destination: UInt64
    public var source: UInt64
    /// The 802.1Q tag control (PCP, DEI, VID) if the frame carries one, from its bytes or the kernel's metadata.
    public var tci: UInt16?
    /// True when the tag is in the buffer at offset 12 (false when the kernel stripped it into metadata).
    public var tagInBuffer: Bool
    /// The EtherType after any tag.
    public var etherType: UInt16
    /// Offset of the layer-3 header in the buffer.
    public var payloadOffset: Int

    /// Parses a frame of `length` bytes; `strippedTCI` is the kernel's VLAN metadata (TP_STATUS_VLAN_VALID).
    /// Returns nil for a runt (shorter than an Ethernet header).
    @inline(__always)
    public init?(_ p: UnsafeRawPointer, length: Int, strippedTCI: UInt16? = nil) {
        guard length >= 14 else { return nil }
        destination = Ethernet.mac(p, at: 0)
        source = Ethernet.mac(p, at: 6)
        let type = Ethernet.u16(p, at: 12)
        if strippedTCI == nil, type == Ethernet.typeVLAN, length >= 18 {
            tci = Ethernet.u16(p, at: 14)
            tagInBuffer = true
            etherType = Ethernet.u16(p, at: 16)
            payloadOffset = 18
        } else {
            tci = strippedTCI
            tagInBuffer = false
            etherType = type
            payloadOffset = 14
        }
    }

    /// The VLAN id of the tag (0 for a priority tag), nil when untagged.
    public var vid: UInt16? { tci.map { $0 & 0xfff } }
}

import KilnConfig

/// Pure builders of the IPv4/UDP (and Ethernet, for captures) headers around a DHCP payload, for replies
/// sent on a packet socket to a client that has no address yet (RFC 2131 §4.1).
public enum DHCPFrame {
    public static let serverPort: UInt16 = 67
    public static let clientPort: UInt16 = 68

    /// An IPv4 datagram carrying UDP: 20-byte header (TTL 64, no options), both checksums filled in.
    public static func ipv4UDP(source: IPv4Address, sourcePort: UInt16, destination: IPv4Address, destinationPort: UInt16,
                               payload: [UInt8]) -> [UInt8] {
        let udpLength = 8 + payload.count
        let total = 20 + udpLength
        var out: [UInt8] = []
        out.reserveCapacity(total)
        out += [0x45, 0, UInt8(total >> 8), UInt8(total & 0xff), 0, 0, 0x40, 0, 64, 17, 0, 0]
        out += source.bytes; out += destination.bytes
        let ipSum = checksum(out[0..<20], initial: 0)
        out[10] = UInt8(ipSum >> 8); out[11] = UInt8(ipSum & 0xff)
        out += [UInt8(sourcePort >> 8), UInt8(sourcePort & 0xff), UInt8(destinationPort >> 8), UInt8(destinationPort & 0xff),
                UInt8(udpLength >> 8), UInt8(udpLength & 0xff), 0, 0]
        out += payload
        // Pseudo-header: source, destination, zero, protocol, UDP length (RFC 768).
        var pseudo = UInt32(source.value >> 16) + UInt32(source.value & 0xffff) + UInt32(destination.value >> 16)
        pseudo += UInt32(destination.value & 0xffff) + 17 + UInt32(udpLength)
        var udpSum = checksum(out[20...], initial: pseudo)
        if udpSum == 0 { udpSum = 0xffff }
        out[26] = UInt8(udpSum >> 8); out[27] = UInt8(udpSum & 0xff)
        return out
    }

    /// An Ethernet II header (type IPv4) in front of `packet`.
    public static func ethernet(destination: MACAddress, source: MACAddress, packet: [UInt8]) -> [UInt8] {
        destination.bytes + source.bytes + [0x08, 0x00] + packet
    }

    /// The Internet checksum (RFC 1071) of `bytes`, starting from a partial 32-bit sum.
    public static func checksum(_ bytes: ArraySlice<UInt8>, initial: UInt32) -> UInt16 {
        var sum = initial
        var i = bytes.startIndex
        while i + 1 < bytes.endIndex { sum &+= UInt32(bytes[i]) << 8 | UInt32(bytes[i + 1]); i += 2 }
        if i < bytes.endIndex { sum &+= UInt32(bytes[i]) << 8 }
        while sum >> 16 != 0 { sum = (sum & 0xffff) + (sum >> 16) }
        return ~UInt16(sum)
    }
}

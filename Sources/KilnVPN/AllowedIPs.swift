/// Cryptokey routing: a binary prefix trie per address family mapping allowed-IP prefixes to a peer index.
/// Lookups return the longest matching prefix; they do not allocate.
public struct AllowedIPs: Sendable {
    private struct Node: Sendable {
        var children: (Int32, Int32) = (-1, -1)
        var value: Int32 = -1
    }

    private var v4: [Node] = [Node()]
    private var v6: [Node] = [Node()]

    public init() {}

    /// Maps `prefix`/`length` (4 or 16 address bytes) to `peer`, replacing an earlier owner of the same prefix.
    public mutating func insert(_ address: [UInt8], prefixLength: Int, peer: Int) {
        precondition(address.count == 4 || address.count == 16)
        precondition(prefixLength >= 0 && prefixLength <= address.count * 8)
        if address.count == 4 { Self.insert(&v4, address, prefixLength, Int32(peer)) } else { Self.insert(&v6, address, prefixLength, Int32(peer)) }
    }

    private static func insert(_ nodes: inout [Node], _ address: [UInt8], _ length: Int, _ peer: Int32) {
        var index = 0
        for bit in 0..<length {
            let one = (address[bit >> 3] >> (7 - UInt8(bit & 7))) & 1 == 1
            var child = one ? nodes[index].children.1 : nodes[index].children.0
            if child < 0 {
                nodes.append(Node())
                child = Int32(nodes.count - 1)
                if one { nodes[index].children.1 = child } else { nodes[index].children.0 = child }
            }
            index = Int(child)
        }
        nodes[index].value = peer
    }

    /// The peer owning the longest prefix that contains the address at `bytes` (4 or 16 bytes), or nil.
    @inline(__always)
    public func lookup(_ bytes: UnsafeRawBufferPointer) -> Int? {
        let isV4 = bytes.count == 4
        return (isV4 ? v4 : v6).withUnsafeBufferPointer { nodes -> Int? in
            var index = 0
            var best: Int32 = nodes[0].value
            for bit in 0..<(bytes.count * 8) {
                let one = (bytes[bit >> 3] >> (7 - UInt8(bit & 7))) & 1 == 1
                let child = one ? nodes[index].children.1 : nodes[index].children.0
                if child < 0 { break }
                index = Int(child)
                if nodes[index].value >= 0 { best = nodes[index].value }
            }
            return best >= 0 ? Int(best) : nil
        }
    }

    public func lookup(_ address: [UInt8]) -> Int? {
        address.withUnsafeBytes { lookup($0) }
    }

    /// Source (or destination) address of an IP packet: the 4 or 16 bytes, or nil for anything else.
    @inline(__always)
    public static func address(of packet: UnsafeRawBufferPointer, source: Bool) -> UnsafeRawBufferPointer? {
        guard packet.count >= 20 else { return nil }
        switch packet[0] >> 4 {
        case 4: return UnsafeRawBufferPointer(rebasing: packet[(source ? 12 : 16)..<(source ? 16 : 20)])
        case 6:
            guard packet.count >= 40 else { return nil }
            return UnsafeRawBufferPointer(rebasing: packet[(source ? 8 : 24)..<(source ? 24 : 40)])
        default: return nil
        }
    }
}

/// One flow's identity: the 5-tuple plus the VLAN and ingress port it was seen on.
///
/// IPv4 addresses are held in the low 32 bits of `sourceLow`/`destinationLow` with `isIPv6` false.
public struct FlowKey: Hashable, Sendable {
    public var sourceHigh: UInt64 = 0
    public var sourceLow: UInt64 = 0
    public var destinationHigh: UInt64 = 0
    public var destinationLow: UInt64 = 0
    public var sourcePort: UInt16 = 0
    public var destinationPort: UInt16 = 0
    public var proto: UInt8 = 0
    public var isIPv6 = false
    public var vlan: UInt16 = 0
    public var ingressPort: UInt16 = 0
    public init() {}

    /// The key of an IPv4 or IPv6 packet at `offset` in a frame of `length` bytes, nil for anything else.
    /// Ports are read for TCP, UDP and SCTP first fragments only.
    @inline(__always)
    public static func parse(_ p: UnsafeRawPointer, length: Int, header: FrameHeader, vlan: UInt16, port: Int) -> FlowKey? {
        let o = header.payloadOffset
        var key = FlowKey()
        var l4 = 0
        switch header.etherType {
        case Ethernet.typeIPv4:
            guard length >= o + 20 else { return nil }
            let ihl = Int(p.load(fromByteOffset: o, as: UInt8.self) & 0x0f) * 4
            key.proto = p.load(fromByteOffset: o + 9, as: UInt8.self)
            key.sourceLow = UInt64(Ethernet.u32(p, at: o + 12))
            key.destinationLow = UInt64(Ethernet.u32(p, at: o + 16))
            let fragmentOffset = Ethernet.u16(p, at: o + 6) & 0x1fff
            l4 = fragmentOffset == 0 && ihl >= 20 ? o + ihl : 0
        case Ethernet.typeIPv6:
            guard length >= o + 40 else { return nil }
            key.isIPv6 = true
            key.proto = p.load(fromByteOffset: o + 6, as: UInt8.self)
            key.sourceHigh = UInt64(Ethernet.u32(p, at: o + 8)) << 32 | UInt64(Ethernet.u32(p, at: o + 12))
            key.sourceLow = UInt64(Ethernet.u32(p, at: o + 16)) << 32 | UInt64(Ethernet.u32(p, at: o + 20))
            key.destinationHigh = UInt64(Ethernet.u32(p, at: o + 24)) << 32 | UInt64(Ethernet.u32(p, at: o + 28))
            key.destinationLow = UInt64(Ethernet.u32(p, at: o + 32)) << 32 | UInt64(Ethernet.u32(p, at: o + 36))
            l4 = o + 40
        default:
            return nil
        }
        if l4 > 0, key.proto == 6 || key.proto == 17 || key.proto == 132, length >= l4 + 4 {
            key.sourcePort = Ethernet.u16(p, at: l4)
            key.destinationPort = Ethernet.u16(p, at: l4 + 2)
        }
        key.vlan = vlan
        key.ingressPort = UInt16(truncatingIfNeeded: port)
        return key
    }
}

/// Packet and byte totals of one flow since the last export, with first and last times (ms since the epoch).
public struct FlowRecord: Equatable, Sendable {
    public var key: FlowKey
    public var packets: UInt64
    public var bytes: UInt64
    public var startMilliseconds: UInt64
    public var endMilliseconds: UInt64
}

/// Flow accounting in fixed memory: at most `capacity` flows between exports; packets of further new flows
/// are counted in `untracked` instead of growing the table.
public struct FlowTable {
    public let capacity: Int
    public private(set) var count = 0
    public private(set) var untracked: UInt64 = 0
    private var used: [Bool]
    private var records: [FlowRecord]
    private let mask: Int

    public init(capacity: Int) {
        self.capacity = max(1, capacity)
        var size = 16
        while size < self.capacity * 2 { size <<= 1 }
        mask = size - 1
        used = [Bool](repeating: false, count: size)
        records = [FlowRecord](repeating: FlowRecord(key: FlowKey(), packets: 0, bytes: 0, startMilliseconds: 0,
                                                     endMilliseconds: 0), count: size)
    }

    @inline(__always)
    private func slot(_ key: FlowKey) -> Int {
        var h = key.sourceLow &* 0x9E37_79B9_7F4A_7C15
        h ^= key.destinationLow &* 0xC2B2_AE3D_27D4_EB4F
        h ^= key.sourceHigh ^ key.destinationHigh.rotated(17)
        h ^= UInt64(key.sourcePort) << 32 | UInt64(key.destinationPort) << 16 | UInt64(key.proto) << 8 | UInt64(key.vlan) << 40
        h ^= UInt64(key.ingressPort) << 56
        h = h &* 0xFF51_AFD7_ED55_8CCD
        h ^= h >> 33
        return Int(truncatingIfNeeded: h) & mask
    }

    /// Adds `packets` packets of `bytes` in all (frame lengths) to the flow `key` at `nowMilliseconds`; more than
    /// one for a GSO super-frame (see `Segmentation`).
    @inline(__always)
    public mutating func account(_ key: FlowKey, packets: Int = 1, bytes: Int, nowMilliseconds: UInt64) {
        var i = slot(key)
        while used[i] {
            if records[i].key == key {
                records[i].packets &+= UInt64(packets)
                records[i].bytes &+= UInt64(bytes)
                records[i].endMilliseconds = nowMilliseconds
                return
            }
            i = (i + 1) & mask
        }
        guard count < capacity else { untracked &+= UInt64(packets); return }
        used[i] = true
        records[i] = FlowRecord(key: key, packets: UInt64(packets), bytes: UInt64(bytes), startMilliseconds: nowMilliseconds,
                                endMilliseconds: nowMilliseconds)
        count += 1
    }

    /// Hands every flow to `body` and empties the table (each export carries deltas since the previous one).
    public mutating func drain(_ body: (FlowRecord) -> Void) {
        for i in 0...mask where used[i] {
            body(records[i])
            used[i] = false
        }
        count = 0
    }
}

extension UInt64 {
    @inline(__always)
    fileprivate func rotated(_ n: UInt64) -> UInt64 { self << n | self >> (64 - n) }
}

/// How a port treats 802.1Q tags.
public enum PortMode: Equatable, Sendable {
    /// Untagged frames belong to `vlan` (the PVID); frames leave untagged.
    case access(vlan: UInt16)
    /// Tagged frames for the allowed VLANs; untagged frames belong to `native` if set, else are dropped.
    case trunk(allowed: [UInt16], native: UInt16?)
}

/// Frame and byte counts of one port, as `ip -s link` shows them for an interface.
public struct PortCounters: Equatable, Sendable {
    public var rxPackets: UInt64 = 0
    public var rxBytes: UInt64 = 0
    public var txPackets: UInt64 = 0
    public var txBytes: UInt64 = 0
    /// Frames dropped at ingress: VLAN not allowed, runt, or destination on the ingress port itself.
    public var rxDropped: UInt64 = 0
    /// Frames the edge failed to send (ring full, link down).
    public var txErrors: UInt64 = 0
    /// Frames received that were flooded (broadcast, multicast, unknown unicast).
    public var flooded: UInt64 = 0
    public init() {}
}

/// What to do with a frame's tag on the way out of one port.
public enum TagAction: Int32, Sendable {
    case asIs = 0, pop = 1, push = 2, replace = 3
}

/// The forwarding result for one frame: where it goes, in which VLAN, and who mirrors it.
public struct Decision: Equatable, Sendable {
    /// Egress ports as a bit set (bit n = port n). Empty means dropped.
    public var ports: UInt64
    /// Mirror destinations that get a copy of the frame as it arrived.
    public var mirrors: UInt64
    /// The frame's VLAN.
    public var vlan: UInt16
    public static let drop = Decision(ports: 0, mirrors: 0, vlan: 0)
}

/// The switch's forwarding logic as a pure value: port modes, VLAN membership, the MAC table, mirrors and
/// counters. The edge feeds it headers and a clock and moves bytes as told; tests drive it directly.
///
/// Up to 64 ports (a port set is one `UInt64`). Mirror destinations take no part in switching (as with SPAN on
/// hardware switches): they are never flooded to and what they receive is ignored.
public struct SwitchCore {
    public let modes: [PortMode]
    public var table: MACTable
    public private(set) var counters: [PortCounters]
    /// For each VLAN id, the ports that are members (bit set).
    private var members: [UInt64]
    /// For each VLAN id and port, whether frames leave that port tagged.
    private var taggedOut: [UInt64]
    private var mirrorRx: [UInt64]  // per port: mirror destinations of its received traffic
    private var mirrorTx: [UInt64]  // per port: mirror destinations of its transmitted traffic
    private let mirrorPorts: UInt64

    public static let maxPorts = 64

    /// A switch with ports `modes` (index = port number) and `mirrors` as (source ports, destination) pairs.
    public init(modes: [PortMode], mirrors: [(sources: [Int], destination: Int)] = [],
                macLimit: Int = 8192, macPortLimit: Int = 4096, agingSeconds: UInt64 = 300) {
        precondition(modes.count <= Self.maxPorts)
        self.modes = modes
        table = MACTable(portCount: modes.count, limit: macLimit, portLimit: macPortLimit, agingSeconds: agingSeconds)
        counters = Array(repeating: PortCounters(), count: modes.count)
        members = Array(repeating: 0, count: 4096)
        taggedOut = Array(repeating: 0, count: 4096)
        mirrorRx = Array(repeating: 0, count: modes.count)
        mirrorTx = Array(repeating: 0, count: modes.count)
        var dests: UInt64 = 0
        for m in mirrors { dests |= 1 << UInt64(m.destination) }
        mirrorPorts = dests
        for m in mirrors {
            for s in m.sources where s != m.destination {
                mirrorRx[s] |= 1 << UInt64(m.destination)
                mirrorTx[s] |= 1 << UInt64(m.destination)
            }
        }
        for (p, mode) in modes.enumerated() where dests & (1 << UInt64(p)) == 0 {
            let bit: UInt64 = 1 << UInt64(p)
            switch mode {
            case let .access(vlan):
                members[Int(vlan & 0xfff)] |= bit
            case let .trunk(allowed, native):
                for v in allowed { members[Int(v & 0xfff)] |= bit; taggedOut[Int(v & 0xfff)] |= bit }
                if let native { members[Int(native & 0xfff)] |= bit; taggedOut[Int(native & 0xfff)] &= ~bit }
            }
        }
    }

    /// The VLAN a frame belongs to on `port`, or nil when the port does not accept it.
    @inline(__always)
    public func classify(port: Int, vid: UInt16?) -> UInt16? {
        switch modes[port] {
        case let .access(pvid):
            guard let vid, vid != 0 else { return pvid }
            return vid == pvid ? pvid : nil
        case let .trunk(_, native):
            guard let vid, vid != 0 else { return native }
            return members[Int(vid)] & (1 << UInt64(port)) != 0 ? vid : nil
        }
    }

    /// Learns the source, looks up the destination and counts the frame: the whole per-frame decision.
    @inline(__always)
    public mutating func forward(port: Int, header: FrameHeader, length: Int, now: UInt64) -> Decision {
        let bit: UInt64 = 1 << UInt64(port)
        counters[port].rxPackets &+= 1
        counters[port].rxBytes &+= UInt64(length)
        if mirrorPorts & bit != 0 { return .drop }
        guard let vlan = classify(port: port, vid: header.vid), members[Int(vlan)] & bit != 0 else {
            counters[port].rxDropped &+= 1
            return .drop
        }
        if !Ethernet.isGroup(header.source) {
            table.learn(vlan: vlan, mac: header.source, port: port, now: now)
        }
        var out: UInt64
        if !Ethernet.isGroup(header.destination), let known = table.lookup(vlan: vlan, mac: header.destination, now: now) {
            out = (1 << UInt64(known)) & members[Int(vlan)] & ~bit
        } else {
            out = members[Int(vlan)] & ~bit
            counters[port].flooded &+= 1
        }
        if out == 0 {
            counters[port].rxDropped &+= 1
            return Decision(ports: 0, mirrors: mirrorRx[port], vlan: vlan)
        }
        var mirrors = mirrorRx[port]
        var rest = out
        while rest != 0 {
            let p = rest.trailingZeroBitCount
            rest &= rest - 1
            counters[p].txPackets &+= 1
            counters[p].txBytes &+= UInt64(length)
            mirrors |= mirrorTx[p]
        }
        return Decision(ports: out, mirrors: mirrors, vlan: vlan)
    }

    /// The tag change for sending a frame of `vlan` out of `port`, given whether its buffer holds a tag now
    /// and that tag's VID.
    @inline(__always)
    public func tagAction(port: Int, vlan: UInt16, tagInBuffer: Bool, bufferVID: UInt16) -> TagAction {
        let wantTag = taggedOut[Int(vlan)] & (1 << UInt64(port)) != 0
        switch (wantTag, tagInBuffer) {
        case (false, false): return .asIs
        case (false, true): return .pop
        case (true, false): return .push
        case (true, true): return bufferVID == vlan ? .asIs : .replace
        }
    }

    /// Counts mirror copies sent and edge send failures.
    public mutating func countMirror(port: Int, length: Int) {
        counters[port].txPackets &+= 1
        counters[port].txBytes &+= UInt64(length)
    }

    /// Counts a frame too short to parse.
    public mutating func countRunt(port: Int) {
        counters[port].rxPackets &+= 1
        counters[port].rxDropped &+= 1
    }

    /// Records frames the edge could not send on `port`.
    public mutating func countTxError(port: Int, frames: Int = 1) {
        counters[port].txErrors &+= UInt64(frames)
    }

    /// The member ports of `vlan` (bit set), for tests and `show vlan`.
    public func members(of vlan: UInt16) -> UInt64 { members[Int(vlan & 0xfff)] }
}

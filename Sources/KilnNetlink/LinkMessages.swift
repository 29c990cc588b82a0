/// `struct ifinfomsg`: the fixed header of every link message (16 bytes).
public struct InterfaceInfoHeader: Equatable, Sendable {
    public static let size = 16
    public var family: UInt8 = AddressFamily.unspecified
    public var deviceType: UInt16 = 0
    public var index: Int32 = 0
    public var flags: UInt32 = 0
    public var change: UInt32 = 0

    public init(family: UInt8 = AddressFamily.unspecified, index: Int32 = 0, flags: UInt32 = 0, change: UInt32 = 0) {
        self.family = family
        self.index = index
        self.flags = flags
        self.change = change
    }

    public func encoded() -> [UInt8] {
        var bytes: [UInt8] = [family, 0]
        bytes.appendLittleEndian(deviceType)
        bytes.appendLittleEndian(index)
        bytes.appendLittleEndian(flags)
        bytes.appendLittleEndian(change)
        return bytes
    }

    public init(decoding payload: [UInt8]) throws(NetlinkDecodeError) {
        guard payload.count >= Self.size else { throw NetlinkDecodeError("ifinfomsg of \(payload.count) bytes") }
        family = payload[0]
        deviceType = payload.littleEndianUInt16(at: 2)
        index = Int32(bitPattern: payload.littleEndianUInt32(at: 4))
        flags = payload.littleEndianUInt32(at: 8)
        change = payload.littleEndianUInt32(at: 12)
    }
}

/// A network interface as RTM_NEWLINK describes it (`ip -d link show`).
public struct Link: Equatable, Sendable {
    public var index: Int32
    public var name: String
    /// IFF_* flags (`isUp`, `isRunning`).
    public var flags: UInt32
    public var mtu: UInt32?
    /// The hardware address (6 bytes for Ethernet; empty for TUN).
    public var address: [UInt8]
    /// `IFLA_INFO_KIND`: "vlan", "bridge", "veth", "tun", "dummy"; nil for plain hardware NICs.
    public var kind: String?
    /// The bridge (or bond) this link is enslaved to.
    public var master: Int32?
    /// The lower link (IFLA_LINK): a VLAN's parent, a veth's peer.
    public var parent: Int32?
    /// IFLA_VLAN_ID for a VLAN.
    public var vlanID: UInt16?
    /// IF_OPER_* (6 = up).
    public var operationalState: UInt8?

    public var isUp: Bool { flags & InterfaceFlags.up != 0 }
    public var isRunning: Bool { flags & InterfaceFlags.running != 0 }

    /// `02:11:22:33:44:55`.
    public var addressText: String { AddressText.format(address) }

    /// Decodes an RTM_NEWLINK message.
    public init(_ message: NetlinkMessage) throws(NetlinkDecodeError) {
        let header = try InterfaceInfoHeader(decoding: message.payload)
        let attributes = try NetlinkAttribute.decodeAll(message.payload.dropFirst(InterfaceInfoHeader.size))
        guard let name = attributes.first(LinkAttribute.name)?.string else {
            throw NetlinkDecodeError("link \(header.index) without IFLA_IFNAME")
        }
        index = header.index
        flags = header.flags
        self.name = name
        mtu = attributes.first(LinkAttribute.mtu)?.u32
        address = attributes.first(LinkAttribute.address)?.value ?? []
        master = attributes.first(LinkAttribute.master)?.u32.map { Int32(bitPattern: $0) }
        parent = attributes.first(LinkAttribute.link)?.u32.map { Int32(bitPattern: $0) }
        operationalState = attributes.first(LinkAttribute.operationalState)?.u8
        if let info = try attributes.first(LinkAttribute.linkInfo)?.nested() {
            kind = info.first(LinkAttribute.infoKind)?.string
            if kind == "vlan", let data = try info.first(LinkAttribute.infoData)?.nested() {
                vlanID = data.first(LinkAttribute.vlanID)?.u16
            }
        }
    }
}

/// RTM_*LINK requests as pure values; each matches what `ip` sends for the command named in its comment.
public enum LinkRequest {
    /// RTEXT_FILTER_VF, as `ip link show` asks.
    static let dumpMask: UInt32 = 1

    /// `ip link show`
    public static func dump() -> NetlinkMessage {
        NetlinkMessage(
            type: MessageType.getLink, flags: MessageFlags.request | MessageFlags.dump,
            payload: InterfaceInfoHeader(family: AddressFamily.packet).encoded()
                + [.u32(LinkAttribute.extendedMask, dumpMask)].encoded())
    }

    /// `ip link show dev NAME` (by name, so no lookup is needed first)
    public static func get(name: String) throws(NetlinkError) -> NetlinkMessage {
        try validate(name: name, operation: "find link")
        return NetlinkMessage(
            type: MessageType.getLink, flags: MessageFlags.request,
            payload: InterfaceInfoHeader(family: AddressFamily.packet).encoded()
                + [.string(LinkAttribute.name, name), .u32(LinkAttribute.extendedMask, dumpMask)].encoded())
    }

    /// `ip link show` of one index (RTEXT_FILTER_VF | RTEXT_FILTER_SKIP_STATS, as iproute2 asks)
    public static func get(index: Int32) -> NetlinkMessage {
        NetlinkMessage(
            type: MessageType.getLink, flags: MessageFlags.request,
            payload: InterfaceInfoHeader(index: index).encoded() + [.u32(LinkAttribute.extendedMask, 9)].encoded())
    }

    /// `ip link set dev X up` / `down`
    public static func set(index: Int32, up: Bool) -> NetlinkMessage {
        change(InterfaceInfoHeader(index: index, flags: up ? InterfaceFlags.up : 0, change: InterfaceFlags.up), [])
    }

    /// `ip link set dev X mtu N`
    public static func set(index: Int32, mtu: UInt32) -> NetlinkMessage {
        change(InterfaceInfoHeader(index: index), [.u32(LinkAttribute.mtu, mtu)])
    }

    /// `ip link set dev X name NEW` (bring the link down first: older kernels and most drivers refuse with EBUSY)
    public static func rename(index: Int32, to name: String) throws(NetlinkError) -> NetlinkMessage {
        try validate(name: name, operation: "rename to \(name)")
        return change(InterfaceInfoHeader(index: index), [.string(LinkAttribute.name, name)])
    }

    /// `ip link set dev X master BR`; master 0 is `nomaster`
    public static func set(index: Int32, master: Int32) -> NetlinkMessage {
        change(InterfaceInfoHeader(index: index), [.u32(LinkAttribute.master, UInt32(bitPattern: master))])
    }

    /// `ip link add NAME type KIND` (bridge, dummy, ...)
    public static func add(name: String, kind: String) throws(NetlinkError) -> NetlinkMessage {
        try validate(name: name, operation: "add \(kind) \(name)")
        return create([.string(LinkAttribute.name, name), .nested(LinkAttribute.linkInfo, [.unterminated(LinkAttribute.infoKind, kind)])])
    }

    /// `ip link add link PARENT name NAME type vlan id ID`
    public static func addVLAN(parent: Int32, id: UInt16, name: String) throws(NetlinkError) -> NetlinkMessage {
        let operation = "add VLAN \(id) \(name)"
        try validate(name: name, operation: operation)
        guard (1...4094).contains(id) else {
            throw NetlinkError(operation: operation, reason: .invalidArgument("VLAN id \(id) is outside 1-4094"))
        }
        return create([
            .u32(LinkAttribute.link, UInt32(bitPattern: parent)),
            .string(LinkAttribute.name, name),
            .nested(LinkAttribute.linkInfo, [
                .unterminated(LinkAttribute.infoKind, "vlan"),
                .nested(LinkAttribute.infoData, [.u16(LinkAttribute.vlanID, id)]),
            ]),
        ])
    }

    /// `ip link add NAME type veth peer name PEER`
    public static func addVeth(name: String, peer: String) throws(NetlinkError) -> NetlinkMessage {
        try validate(name: name, operation: "add veth \(name)")
        try validate(name: peer, operation: "add veth \(name) peer")
        let peerInfo = InterfaceInfoHeader().encoded() + [.string(LinkAttribute.name, peer)].encoded()
        return create([
            .string(LinkAttribute.name, name),
            .nested(LinkAttribute.linkInfo, [
                .unterminated(LinkAttribute.infoKind, "veth"),
                .nested(LinkAttribute.infoData, [NetlinkAttribute(type: LinkAttribute.vethPeer, value: peerInfo)]),
            ]),
        ])
    }

    /// `ip link del dev X`
    public static func delete(index: Int32) -> NetlinkMessage {
        NetlinkMessage(
            type: MessageType.deleteLink, flags: MessageFlags.request | MessageFlags.ack,
            payload: InterfaceInfoHeader(index: index).encoded())
    }

    /// Interface names: 1-15 bytes, no '/', ':' or whitespace (dev_valid_name in the kernel).
    static func validate(name: String, operation: String) throws(NetlinkError) {
        let bytes = Array(name.utf8)
        let bad = bytes.isEmpty || bytes.count > 15 || name == "." || name == ".."
            || bytes.contains { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: ":") || $0 <= 32 }
        if bad {
            throw NetlinkError(operation: operation, reason: .invalidArgument("\"\(name)\" is not a valid interface name (1-15 bytes, no '/', ':' or spaces)"))
        }
    }

    private static func change(_ header: InterfaceInfoHeader, _ attributes: [NetlinkAttribute]) -> NetlinkMessage {
        NetlinkMessage(
            type: MessageType.newLink, flags: MessageFlags.request | MessageFlags.ack,
            payload: header.encoded() + attributes.encoded())
    }

    private static func create(_ attributes: [NetlinkAttribute]) -> NetlinkMessage {
        NetlinkMessage(
            type: MessageType.newLink,
            flags: MessageFlags.request | MessageFlags.ack | MessageFlags.exclusive | MessageFlags.create,
            payload: InterfaceInfoHeader().encoded() + attributes.encoded())
    }
}

/// `struct ifaddrmsg`: the fixed header of address messages (8 bytes).
public struct AddressInfoHeader: Equatable, Sendable {
    public static let size = 8
    public var family: UInt8
    public var prefixLength: UInt8
    public var flags: UInt8 = 0
    public var scope: UInt8 = RouteValue.scopeUniverse
    public var index: UInt32

    public init(family: UInt8, prefixLength: UInt8, index: UInt32) {
        self.family = family
        self.prefixLength = prefixLength
        self.index = index
    }

    public func encoded() -> [UInt8] {
        var bytes = [family, prefixLength, flags, scope]
        bytes.appendLittleEndian(index)
        return bytes
    }

    public init(decoding payload: [UInt8]) throws(NetlinkDecodeError) {
        guard payload.count >= Self.size else { throw NetlinkDecodeError("ifaddrmsg of \(payload.count) bytes") }
        family = payload[0]
        prefixLength = payload[1]
        flags = payload[2]
        scope = payload[3]
        index = payload.littleEndianUInt32(at: 4)
    }
}

/// An address on an interface as RTM_NEWADDR describes it (`ip addr show`).
public struct InterfaceAddress: Equatable, Sendable {
    public var family: UInt8
    public var index: Int32
    public var prefixLength: UInt8
    public var scope: UInt8
    /// IFA_LOCAL (the interface's own address; absent for some IPv6 entries, then use `address`).
    public var local: [UInt8]?
    /// IFA_ADDRESS (the peer on point-to-point links, else the same as local).
    public var address: [UInt8]?
    public var broadcast: [UInt8]?
    public var label: String?

    /// The interface's own address: IFA_LOCAL, else IFA_ADDRESS.
    public var bytes: [UInt8] { local ?? address ?? [] }

    /// `10.0.0.1/24`.
    public var text: String { AddressText.format(bytes, prefix: prefixLength) }

    /// Decodes an RTM_NEWADDR message.
    public init(_ message: NetlinkMessage) throws(NetlinkDecodeError) {
        let header = try AddressInfoHeader(decoding: message.payload)
        let attributes = try NetlinkAttribute.decodeAll(message.payload.dropFirst(AddressInfoHeader.size))
        family = header.family
        index = Int32(bitPattern: header.index)
        prefixLength = header.prefixLength
        scope = header.scope
        local = attributes.first(AddressAttribute.local)?.value
        address = attributes.first(AddressAttribute.address)?.value
        broadcast = attributes.first(AddressAttribute.broadcast)?.value
        label = attributes.first(AddressAttribute.label)?.string
    }
}

/// RTM_*ADDR requests as pure values. Addresses are raw bytes (4 for IPv4, 16 for IPv6), network order.
public enum AddressRequest {
    /// `ip addr show`
    public static func dump(family: UInt8 = AddressFamily.unspecified) -> NetlinkMessage {
        NetlinkMessage(
            type: MessageType.getAddress, flags: MessageFlags.request | MessageFlags.dump,
            payload: AddressInfoHeader(family: family, prefixLength: 0, index: 0).encoded())
    }

    /// `ip addr add A/P brd + dev X` for IPv4 (broadcast computed from the prefix, none for /31 and /32),
    /// `ip addr add A/P dev X` for IPv6.
    public static func add(index: Int32, address: [UInt8], prefixLength: UInt8) throws(NetlinkError) -> NetlinkMessage {
        let family = try validate(address, prefixLength, operation: "add address")
        var attributes: [NetlinkAttribute] = [
            .init(type: AddressAttribute.local, value: address), .init(type: AddressAttribute.address, value: address),
        ]
        if family == AddressFamily.inet && prefixLength < 31 {
            attributes.append(.init(type: AddressAttribute.broadcast, value: broadcast(address, prefixLength)))
        }
        return NetlinkMessage(
            type: MessageType.newAddress,
            flags: MessageFlags.request | MessageFlags.ack | MessageFlags.exclusive | MessageFlags.create,
            payload: AddressInfoHeader(family: family, prefixLength: prefixLength, index: UInt32(bitPattern: index))
                .encoded() + attributes.encoded())
    }

    /// `ip addr del A/P dev X`
    public static func delete(index: Int32, address: [UInt8], prefixLength: UInt8) throws(NetlinkError) -> NetlinkMessage {
        let family = try validate(address, prefixLength, operation: "delete address")
        let attributes: [NetlinkAttribute] = [
            .init(type: AddressAttribute.local, value: address), .init(type: AddressAttribute.address, value: address),
        ]
        return NetlinkMessage(
            type: MessageType.deleteAddress, flags: MessageFlags.request | MessageFlags.ack,
            payload: AddressInfoHeader(family: family, prefixLength: prefixLength, index: UInt32(bitPattern: index))
                .encoded() + attributes.encoded())
    }

    /// The IPv4 broadcast address of `address/prefixLength` (host bits all ones).
    public static func broadcast(_ address: [UInt8], _ prefixLength: UInt8) -> [UInt8] {
        address.enumerated().map { i, byte in
            let networkBits = max(0, min(8, Int(prefixLength) - 8 * i))
            return byte | UInt8(truncatingIfNeeded: 0xff >> networkBits)
        }
    }

    /// Returns the family of a 4- or 16-byte address whose prefix fits it.
    static func validate(_ address: [UInt8], _ prefixLength: UInt8, operation: String) throws(NetlinkError) -> UInt8 {
        guard let family = AddressFamily.of(address) else {
            throw NetlinkError(operation: operation, reason: .invalidArgument("an address has 4 or 16 bytes, not \(address.count)"))
        }
        let maximum = address.count * 8
        guard Int(prefixLength) <= maximum else {
            throw NetlinkError(
                operation: "\(operation) \(AddressText.format(address, prefix: prefixLength))",
                reason: .invalidArgument("prefix length \(prefixLength) is over \(maximum)"))
        }
        return family
    }
}

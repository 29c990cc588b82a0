/// One netlink message: the `nlmsghdr` fields and the payload after it (host byte order, little-endian here).
public struct NetlinkMessage: Equatable, Sendable {
    public static let headerSize = 16

    public var type: UInt16
    public var flags: UInt16
    public var sequence: UInt32
    public var portID: UInt32
    public var payload: [UInt8]

    public init(type: UInt16, flags: UInt16, sequence: UInt32 = 0, portID: UInt32 = 0, payload: [UInt8] = []) {
        self.type = type
        self.flags = flags
        self.sequence = sequence
        self.portID = portID
        self.payload = payload
    }

    /// The wire form: a 16-byte header whose length covers the payload, then the payload padded to 4 bytes.
    public func encoded() -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Self.headerSize + payload.count + 3)
        bytes.appendLittleEndian(UInt32(Self.headerSize + payload.count))
        bytes.appendLittleEndian(type)
        bytes.appendLittleEndian(flags)
        bytes.appendLittleEndian(sequence)
        bytes.appendLittleEndian(portID)
        bytes += payload
        bytes.padToAlignment()
        return bytes
    }

    /// Splits one received datagram into its messages (several may share a datagram in a dump).
    public static func decodeAll(_ bytes: some Collection<UInt8>) throws(NetlinkDecodeError) -> [NetlinkMessage] {
        let data = Array(bytes)
        var messages: [NetlinkMessage] = []
        var offset = 0
        while offset + headerSize <= data.count {
            let length = Int(data.littleEndianUInt32(at: offset))
            guard length >= headerSize, offset + length <= data.count else {
                throw NetlinkDecodeError("message at byte \(offset) claims \(length) bytes, \(data.count - offset) left")
            }
            messages.append(NetlinkMessage(
                type: data.littleEndianUInt16(at: offset + 4), flags: data.littleEndianUInt16(at: offset + 6),
                sequence: data.littleEndianUInt32(at: offset + 8), portID: data.littleEndianUInt32(at: offset + 12),
                payload: Array(data[(offset + headerSize)..<(offset + length)])))
            offset += align4(length)
        }
        return messages
    }
}

/// A type-length-value attribute (`struct nlattr`): 2-byte length, 2-byte type, value padded to 4 bytes.
public struct NetlinkAttribute: Equatable, Sendable {
    /// The type with the NLA_F_NESTED / NLA_F_NET_BYTEORDER bits the kernel may set; see `kind`.
    public var type: UInt16
    public var value: [UInt8]

    public init(type: UInt16, value: [UInt8]) {
        self.type = type
        self.value = value
    }

    /// The attribute type without flag bits.
    public var kind: UInt16 { type & 0x3fff }

    public static func u8(_ type: UInt16, _ value: UInt8) -> NetlinkAttribute { .init(type: type, value: [value]) }

    public static func u16(_ type: UInt16, _ value: UInt16) -> NetlinkAttribute {
        var bytes: [UInt8] = []
        bytes.appendLittleEndian(value)
        return .init(type: type, value: bytes)
    }

    public static func u32(_ type: UInt16, _ value: UInt32) -> NetlinkAttribute {
        var bytes: [UInt8] = []
        bytes.appendLittleEndian(value)
        return .init(type: type, value: bytes)
    }

    /// A NUL-terminated string, as the kernel expects for names and kinds.
    public static func string(_ type: UInt16, _ value: String) -> NetlinkAttribute {
        .init(type: type, value: Array(value.utf8) + [0])
    }

    /// A string without the terminating NUL, as iproute2 sends IFLA_INFO_KIND (the kernel takes both forms).
    public static func unterminated(_ type: UInt16, _ value: String) -> NetlinkAttribute {
        .init(type: type, value: Array(value.utf8))
    }

    /// An attribute whose value is a list of attributes.
    public static func nested(_ type: UInt16, _ children: [NetlinkAttribute]) -> NetlinkAttribute {
        .init(type: type, value: children.encoded())
    }

    /// Appends the wire form (header, value, padding).
    public func encode(into bytes: inout [UInt8]) {
        bytes.appendLittleEndian(UInt16(4 + value.count))
        bytes.appendLittleEndian(type)
        bytes += value
        bytes.padToAlignment()
    }

    /// The value as a little-endian integer, if it has exactly that size.
    public var u8: UInt8? { value.count == 1 ? value[0] : nil }
    public var u16: UInt16? { value.count == 2 ? value.littleEndianUInt16(at: 0) : nil }
    public var u32: UInt32? { value.count == 4 ? value.littleEndianUInt32(at: 0) : nil }

    /// The value as text, up to the first NUL.
    public var string: String {
        String(decoding: value.prefix { $0 != 0 }, as: UTF8.self)
    }

    /// The value parsed as nested attributes.
    public func nested() throws(NetlinkDecodeError) -> [NetlinkAttribute] {
        try NetlinkAttribute.decodeAll(value)
    }

    /// Parses a run of attributes (the tail of a message after its fixed header).
    public static func decodeAll(_ bytes: some Collection<UInt8>) throws(NetlinkDecodeError) -> [NetlinkAttribute] {
        let data = Array(bytes)
        var attributes: [NetlinkAttribute] = []
        var offset = 0
        while offset + 4 <= data.count {
            let length = Int(data.littleEndianUInt16(at: offset))
            guard length >= 4, offset + length <= data.count else {
                throw NetlinkDecodeError("attribute at byte \(offset) claims \(length) bytes, \(data.count - offset) left")
            }
            attributes.append(NetlinkAttribute(
                type: data.littleEndianUInt16(at: offset + 2), value: Array(data[(offset + 4)..<(offset + length)])))
            offset += align4(length)
        }
        return attributes
    }
}

extension [NetlinkAttribute] {
    /// The concatenated wire form of the attributes.
    public func encoded() -> [UInt8] {
        var bytes: [UInt8] = []
        for attribute in self { attribute.encode(into: &bytes) }
        return bytes
    }

    /// The first attribute of `kind`.
    public func first(_ kind: UInt16) -> NetlinkAttribute? {
        first { $0.kind == kind }
    }
}

/// A reply the decoder could not make sense of: truncated, or lengths that do not add up.
public struct NetlinkDecodeError: Error, Equatable, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// NLA_ALIGN / NLMSG_ALIGN: round up to a multiple of 4.
@inline(__always)
func align4(_ n: Int) -> Int { (n + 3) & ~3 }

extension [UInt8] {
    mutating func appendLittleEndian<T: FixedWidthInteger>(_ value: T) {
        var v = value.littleEndian
        Swift.withUnsafeBytes(of: &v) { append(contentsOf: $0) }
    }

    mutating func padToAlignment() {
        while count % 4 != 0 { append(0) }
    }

    func littleEndianUInt16(at offset: Int) -> UInt16 {
        UInt16(self[offset]) | UInt16(self[offset + 1]) << 8
    }

    func littleEndianUInt32(at offset: Int) -> UInt32 {
        UInt32(self[offset]) | UInt32(self[offset + 1]) << 8 | UInt32(self[offset + 2]) << 16
            | UInt32(self[offset + 3]) << 24
    }
}

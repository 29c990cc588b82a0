/// The peer channel's wire format. Every frame is a 9-byte header — type (1 byte), flow id (4 bytes, big
/// endian), payload length (4 bytes, big endian) — and the payload. Flow 0 is the channel itself.
public enum FrameType: UInt8, Sendable, CaseIterable {
    /// Flow 0: protocol version (1 byte), codec (1 byte) and a 32-byte random challenge.
    case hello = 1
    /// Flow 0: HMAC-SHA256 over the peer's challenge (see ChannelAuth).
    case auth = 2
    /// A new flow: the address the client asked for and the client's own address.
    case open = 3
    /// A codec payload of the flow, in stream order.
    case data = 4
    /// The sender will send no more data on this flow (a TCP FIN).
    case close = 5
    /// The receiver has delivered this many more bytes of the flow: the sender may send that much more.
    case window = 6
    /// The flow failed: a UTF-8 reason; both sides drop it and reset the local connection.
    case reset = 7
    /// The receiver's decoder lacks a chunk (32-byte id) a payload referred to.
    case need = 8
    /// The sender's answer to `need`: a codec payload fed to the decoder like data.
    case supply = 9
}

/// One parsed frame; `payload` is what followed the header.
public struct ChannelFrame: Equatable, Sendable {
    public static let headerSize = 9
    /// Payloads are at most this big; a larger length means the stream is not Kiln's (or is broken), and the
    /// channel, not one flow, is closed.
    public static let maxPayload = 1 << 20

    public var type: FrameType
    public var flow: UInt32
    public var payload: [UInt8]

    public init(_ type: FrameType, flow: UInt32, payload: [UInt8] = []) {
        self.type = type; self.flow = flow; self.payload = payload
    }

    /// Appends the wire form to `bytes`.
    public func encode(into bytes: inout [UInt8]) {
        ChannelFrame.encodeHeader(type, flow: flow, length: payload.count, into: &bytes)
        bytes += payload
    }

    public func encoded() -> [UInt8] {
        var bytes: [UInt8] = []
        encode(into: &bytes)
        return bytes
    }

    static func encodeHeader(_ type: FrameType, flow: UInt32, length: Int, into bytes: inout [UInt8]) {
        bytes.append(type.rawValue)
        bytes.appendBigEndian(flow)
        bytes.appendBigEndian(UInt32(length))
    }
}

/// What the parser found wrong. `flow` is set when only that flow is affected; nil ends the channel.
public struct FrameError: Error, Equatable, Sendable, CustomStringConvertible {
    public var flow: UInt32?
    public var message: String
    public init(flow: UInt32?, _ message: String) { self.flow = flow; self.message = message }
    public var description: String { flow.map { "flow \($0): \(message)" } ?? "channel: \(message)" }
}

/// Splits the channel's byte stream into frames. Bytes go in as they arrive; `next()` returns whole frames.
/// A frame of an unknown type is skipped with an error for its flow (its length still delimits it); only a
/// length over `ChannelFrame.maxPayload` loses the framing and ends the channel.
public struct FrameParser: Sendable {
    private var buffer: [UInt8] = []
    private var start = 0

    public init() {}

    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        if start > 0, start == buffer.count { buffer.removeAll(keepingCapacity: true); start = 0 }
        buffer.append(contentsOf: bytes)
    }

    public mutating func append(_ bytes: [UInt8]) { bytes.withUnsafeBytes { append($0) } }

    /// Bytes received but not yet returned as frames.
    public var pending: Int { buffer.count - start }

    /// The next whole frame, nil when more bytes are needed; throws for a frame that cannot be accepted
    /// (the bytes of a skippable frame are consumed first).
    public mutating func next() throws(FrameError) -> ChannelFrame? {
        guard buffer.count - start >= ChannelFrame.headerSize else { return nil }
        let typeByte = buffer[start]
        let flow = buffer.bigEndianUInt32(at: start + 1)
        let length = Int(buffer.bigEndianUInt32(at: start + 5))
        guard length <= ChannelFrame.maxPayload else {
            throw FrameError(flow: nil, "frame of \(length) bytes is over the \(ChannelFrame.maxPayload)-byte limit")
        }
        guard buffer.count - start - ChannelFrame.headerSize >= length else { return nil }
        let payloadStart = start + ChannelFrame.headerSize
        start = payloadStart + length
        let payload = Array(buffer[payloadStart..<start])
        if start > 1 << 16, start * 2 > buffer.count {
            buffer.removeSubrange(0..<start)
            start = 0
        }
        guard let type = FrameType(rawValue: typeByte) else {
            throw FrameError(flow: flow, "unknown frame type \(typeByte) (\(length) bytes skipped)")
        }
        return ChannelFrame(type, flow: flow, payload: payload)
    }
}

extension [UInt8] {
    mutating func appendBigEndian(_ value: UInt32) {
        append(UInt8(value >> 24)); append(UInt8(value >> 16 & 0xff)); append(UInt8(value >> 8 & 0xff)); append(UInt8(value & 0xff))
    }

    mutating func appendBigEndian(_ value: UInt16) {
        append(UInt8(value >> 8)); append(UInt8(value & 0xff))
    }

    func bigEndianUInt32(at i: Int) -> UInt32 {
        UInt32(self[i]) << 24 | UInt32(self[i + 1]) << 16 | UInt32(self[i + 2]) << 8 | UInt32(self[i + 3])
    }

    func bigEndianUInt16(at i: Int) -> UInt16 { UInt16(self[i]) << 8 | UInt16(self[i + 1]) }
}

import KilnConfig
import KilnDedup

/// An IPv4 or IPv6 address with a TCP port.
public struct SocketAddress: Hashable, Sendable, CustomStringConvertible {
    public var ip: IPAddress
    public var port: UInt16
    public init(ip: IPAddress, port: UInt16) { self.ip = ip; self.port = port }
    public var description: String { ip.isV4 ? "\(ip):\(port)" : "[\(ip)]:\(port)" }
}

/// The frames' meaning: `ChannelMessage.decode` checks each payload against its type, so the service only
/// ever handles well-formed messages. A malformed one is an error for its flow (or, on flow 0, the channel).
public enum ChannelMessage: Equatable, Sendable {
    /// `codec`: how this side encodes flows (CodecFactory.wireID); both sides must agree.
    case hello(version: UInt8, codec: UInt8, challenge: [UInt8])
    case auth(proof: [UInt8])
    case open(flow: UInt32, destination: SocketAddress, source: SocketAddress)
    case data(flow: UInt32, payload: [UInt8])
    case close(flow: UInt32)
    case window(flow: UInt32, increment: UInt32)
    case reset(flow: UInt32, reason: String)
    case need(flow: UInt32, chunk: ChunkID)
    case supply(flow: UInt32, payload: [UInt8])

    public static let challengeSize = 32
    public static let proofSize = 32
    /// RESET reasons longer than this are cut (they are logged by the other side).
    public static let maxReason = 512

    public static func decode(_ frame: ChannelFrame) throws(FrameError) -> ChannelMessage {
        let p = frame.payload
        let flow = frame.flow
        switch frame.type {
        case .hello, .auth:
            guard flow == 0 else { throw FrameError(flow: flow, "\(frame.type) frame on a flow (only flow 0 carries it)") }
        default:
            guard flow != 0 else { throw FrameError(flow: nil, "\(frame.type) frame on flow 0") }
        }
        func need(_ count: Int, _ what: String) throws(FrameError) {
            guard p.count == count else { throw FrameError(flow: flow == 0 ? nil : flow, "\(what) of \(p.count) bytes, expected \(count)") }
        }
        switch frame.type {
        case .hello:
            try need(2 + challengeSize, "hello")
            return .hello(version: p[0], codec: p[1], challenge: Array(p[2...]))
        case .auth:
            try need(proofSize, "auth")
            return .auth(proof: p)
        case .open:
            guard let family = p.first, family == 4 || family == 6 else {
                throw FrameError(flow: flow, "open without an address family (4 or 6)")
            }
            let size = family == 4 ? 4 : 16
            try need(1 + 2 * (size + 2), "open")
            func address(at i: Int) -> SocketAddress {
                let bytes = Array(p[i..<(i + size)])
                let ip: IPAddress = size == 4
                    ? .v4(IPv4Address(bytes.bigEndianUInt32(at: 0)))
                    : .v6(IPv6Address(bytes: bytes))
                return SocketAddress(ip: ip, port: p.bigEndianUInt16(at: i + size))
            }
            return .open(flow: flow, destination: address(at: 1), source: address(at: 1 + size + 2))
        case .data:
            return .data(flow: flow, payload: p)
        case .close:
            try need(0, "close")
            return .close(flow: flow)
        case .window:
            try need(4, "window update")
            let increment = p.bigEndianUInt32(at: 0)
            guard increment > 0 else { throw FrameError(flow: flow, "window update of 0 bytes") }
            return .window(flow: flow, increment: increment)
        case .reset:
            return .reset(flow: flow, reason: String(decoding: p.prefix(maxReason), as: UTF8.self))
        case .need:
            try need(32, "chunk request")
            func word(_ i: Int) -> UInt64 { UInt64(p.bigEndianUInt32(at: i)) << 32 | UInt64(p.bigEndianUInt32(at: i + 4)) }
            return .need(flow: flow, chunk: ChunkID(bytes: (word(0), word(8), word(16), word(24))))
        case .supply:
            return .supply(flow: flow, payload: p)
        }
    }

    public var frame: ChannelFrame {
        switch self {
        case .hello(let version, let codec, let challenge): return ChannelFrame(.hello, flow: 0, payload: [version, codec] + challenge)
        case .auth(let proof): return ChannelFrame(.auth, flow: 0, payload: proof)
        case .open(let flow, let destination, let source):
            var p: [UInt8] = [destination.ip.isV4 ? 4 : 6]
            for a in [destination, source] { p += a.ip.bytes; p.appendBigEndian(a.port) }
            return ChannelFrame(.open, flow: flow, payload: p)
        case .data(let flow, let payload): return ChannelFrame(.data, flow: flow, payload: payload)
        case .close(let flow): return ChannelFrame(.close, flow: flow)
        case .window(let flow, let increment):
            var p: [UInt8] = []
            p.appendBigEndian(increment)
            return ChannelFrame(.window, flow: flow, payload: p)
        case .reset(let flow, let reason): return ChannelFrame(.reset, flow: flow, payload: Array(reason.utf8.prefix(Self.maxReason)))
        case .need(let flow, let chunk):
            var p: [UInt8] = []
            for w in [chunk.bytes.0, chunk.bytes.1, chunk.bytes.2, chunk.bytes.3] {
                p.appendBigEndian(UInt32(w >> 32)); p.appendBigEndian(UInt32(w & 0xffff_ffff))
            }
            return ChannelFrame(.need, flow: flow, payload: p)
        case .supply(let flow, let payload): return ChannelFrame(.supply, flow: flow, payload: payload)
        }
    }
}

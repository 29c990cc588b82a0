import KilnDedup

/// A codec that sends the bytes as they are: the channel's baseline, and what tests of the channel itself use.
public struct PassThroughEncoder: FlowEncoder {
    public static let maxPayload = 64 << 10
    public init() {}
    public mutating func encode(_ bytes: UnsafeRawBufferPointer, flush: Bool, into payloads: inout [[UInt8]]) {
        var offset = 0
        while offset < bytes.count {
            let n = min(Self.maxPayload, bytes.count - offset)
            payloads.append(Array(bytes[offset..<(offset + n)]))
            offset += n
        }
    }
    public mutating func supply(_ id: ChunkID) -> [UInt8]? { nil }
}

public struct PassThroughDecoder: FlowDecoder {
    public init() {}
    public mutating func decode(_ payload: UnsafeRawBufferPointer, into output: inout [UInt8]) throws(CodecError) -> [ChunkID] {
        output.append(contentsOf: payload)
        return []
    }
}

/// Makes the codec pair for each new flow.
public struct CodecFactory: Sendable {
    public var name: String
    public var makeEncoder: @Sendable () -> any FlowEncoder
    public var makeDecoder: @Sendable () -> any FlowDecoder
    public init(name: String, makeEncoder: @escaping @Sendable () -> any FlowEncoder, makeDecoder: @escaping @Sendable () -> any FlowDecoder) {
        self.name = name; self.makeEncoder = makeEncoder; self.makeDecoder = makeDecoder
    }
    public static let passThrough = CodecFactory(name: "pass-through", makeEncoder: { PassThroughEncoder() }, makeDecoder: { PassThroughDecoder() })
}

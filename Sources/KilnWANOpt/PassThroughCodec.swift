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
/// Used on the service's one thread only.
public struct CodecFactory {
    public var name: String
    /// Sent in HELLO: 0 pass-through, 1 dedup.
    public var wireID: UInt8
    public var makeEncoder: () -> any FlowEncoder
    public var makeDecoder: () -> any FlowDecoder
    /// The chunk store the codecs share, for status.
    public var store: ChunkStore?
    public init(name: String, wireID: UInt8, makeEncoder: @escaping () -> any FlowEncoder, makeDecoder: @escaping () -> any FlowDecoder,
                store: ChunkStore? = nil) {
        self.name = name; self.wireID = wireID; self.makeEncoder = makeEncoder; self.makeDecoder = makeDecoder; self.store = store
    }
    public static var passThrough: CodecFactory { CodecFactory(name: "pass-through", wireID: 0, makeEncoder: { PassThroughEncoder() }, makeDecoder: { PassThroughDecoder() }) }
}

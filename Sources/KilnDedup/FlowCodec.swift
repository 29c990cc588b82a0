/// The contract between the WAN optimizer's peer channel and its data reduction, for one direction of one
/// optimized TCP flow. The sending optimizer turns the bytes its client wrote into opaque payloads carried in the
/// channel's DATA frames; the receiving optimizer turns them back into exactly those bytes. The channel knows
/// nothing of chunks; the codec knows nothing of sockets or frames.
///
/// The implementation is DedupEncoder / DedupDecoder over one ChunkStore per optimizer (shared by all flows and
/// both directions; it survives restarts). Per flow direction: `DedupEncoder(store:)` on the sending side,
/// `DedupDecoder(store:)` on the receiving side; payloads are at most 65,354 bytes with the default 8 KiB chunks.
/// Call `encode(_:flush:into:)` for what the client wrote, with `flush` only when its socket has nothing more to
/// read for now; `finish(into:)` at its shutdown. The ids `decode` returns go back to the peer as requests, whose
/// `supply` answers are decoded like any payload; a nil `supply` or a thrown CodecError fails that flow only.

/// A chunk's strong content hash (SHA-256): two chunks with the same id are taken to hold the same bytes.
public struct ChunkID: Hashable, Sendable {
    public var bytes: (UInt64, UInt64, UInt64, UInt64)
    public init(bytes: (UInt64, UInt64, UInt64, UInt64)) { self.bytes = bytes }
    public static func == (a: ChunkID, b: ChunkID) -> Bool {
        a.bytes.0 == b.bytes.0 && a.bytes.1 == b.bytes.1 && a.bytes.2 == b.bytes.2 && a.bytes.3 == b.bytes.3
    }
    public func hash(into hasher: inout Hasher) { hasher.combine(bytes.0); hasher.combine(bytes.1) }
}

/// A payload the codec cannot accept: the flow is closed with this error, the service goes on.
public struct CodecError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The sending side of one flow direction.
public protocol FlowEncoder {
    /// Encodes the next `bytes` of the stream. Appends zero or more payloads (each at most `maxPayload` bytes)
    /// to `payloads`; with `flush`, everything held back so far (a partial chunk) is emitted too.
    mutating func encode(_ bytes: UnsafeRawBufferPointer, flush: Bool, into payloads: inout [[UInt8]])
    /// The stream ends (the client shut down its write side): emits everything held back. Unlike a flush, this
    /// ends the last chunk, so a later send of the same tail can refer to it.
    mutating func finish(into payloads: inout [[UInt8]])
    /// The peer lacks chunk `id` that a payload referred to: a payload carrying its bytes, or nil when this side
    /// no longer holds it either (the flow then fails and is reset; it never delivers wrong bytes).
    mutating func supply(_ id: ChunkID) -> [UInt8]?
}

/// The receiving side of one flow direction.
public protocol FlowDecoder {
    /// Decodes one payload and appends the bytes now ready, in stream order, to `output`. Returns the chunks it
    /// lacks: the channel asks the peer for them (`supply`) and passes the answers to `decode` like any payload;
    /// output stalls until they arrive. Throws for a malformed payload or a chunk whose bytes do not match its id.
    mutating func decode(_ payload: UnsafeRawBufferPointer, into output: inout [UInt8]) throws(CodecError) -> [ChunkID]
}

extension FlowEncoder {
    public mutating func finish(into payloads: inout [[UInt8]]) {
        encode(UnsafeRawBufferPointer(start: nil, count: 0), flush: true, into: &payloads)
    }

    /// `encode` over an array.
    public mutating func encode(_ bytes: [UInt8], flush: Bool, into payloads: inout [[UInt8]]) {
        bytes.withUnsafeBytes { encode($0, flush: flush, into: &payloads) }
    }
}

extension FlowDecoder {
    /// `decode` over an array.
    public mutating func decode(_ payload: [UInt8], into output: inout [UInt8]) throws(CodecError) -> [ChunkID] {
        let result = payload.withUnsafeBytes { bytes in
            Result { () throws(CodecError) -> [ChunkID] in try decode(bytes, into: &output) }
        }
        return try result.get()
    }
}

/// The sending side of one flow direction: chunks the stream with FastCDC, sends a reference for every chunk the
/// store already holds (the peer is assumed to hold it too: it received or sent it), and every other chunk as
/// literal bytes, zstd-compressed when that is smaller, followed by its id. A flush sends the held-back part of
/// the chunk in progress at once; the chunk still ends where the content says, so a flush costs dedup of that
/// one chunk only. Flush when the source has nothing more to read for now, not after every read.
public struct DedupEncoder: FlowEncoder {
    public let store: ChunkStore
    public let maxPayload: Int
    public private(set) var statistics = EncoderStatistics()

    private var chunker: Chunker
    /// The hash of the chunk in progress, fed by the chunker as it scans.
    private var hasher = KilnSHA256()
    /// The chunks that end in the bytes being encoded (kept to reuse its storage).
    private var cuts: [(end: Int, id: ChunkID)] = []
    private var chunk: [UInt8] = []
    /// Bytes at the start of `chunk` already sent as literals (by a flush).
    private var sent = 0
    private var payload: [UInt8] = []
    private var scratch: [UInt8] = []
    /// The last chunk of this stream (its successor is recorded in the store).
    private var previous: ChunkID?
    /// The chunk of an earlier stream this one has reached: the last one referenced, advanced along recorded
    /// successors past new chunks. Its successor is the base for a delta.
    private var cursor: ChunkID?
    private let zstd: ZstdCompressor

    /// The smallest `maxPayload` an encoder with this chunk size accepts: one whole chunk in a supply record.
    public static func minimumPayload(averageChunkSize: Int) -> Int { averageChunkSize * 8 - 256 + Frame.maxHeader }

    /// `averageChunkSize` must match the peer's only for dedup to work well; `maxPayload` must be at least
    /// `minimumPayload(averageChunkSize:)` (65,354 bytes for the default 8 KiB).
    public init(store: ChunkStore, averageChunkSize: Int = 8192, compressionLevel: Int32 = 3, maxPayload: Int = 65535)
        throws(CodecError)
    {
        do { chunker = try Chunker(averageSize: averageChunkSize) } catch { throw CodecError(error.description) }
        guard maxPayload >= DedupEncoder.minimumPayload(averageChunkSize: averageChunkSize) else {
            throw CodecError("payload limit \(maxPayload) is below \(DedupEncoder.minimumPayload(averageChunkSize: averageChunkSize)), "
                + "the size of a supply record for a chunk of the largest size")
        }
        self.store = store
        self.maxPayload = maxPayload
        zstd = ZstdCompressor(level: compressionLevel)
    }

    public mutating func encode(_ bytes: UnsafeRawBufferPointer, flush: Bool, into payloads: inout [[UInt8]]) {
        statistics.bytesIn += bytes.count
        cuts.removeAll(keepingCapacity: true)
        chunker.cuts(in: bytes, hashingInto: &hasher, appendingTo: &cuts)
        var offset = 0
        for (end, id) in cuts {
            let piece = UnsafeRawBufferPointer(rebasing: bytes[offset..<end])
            offset = end
            if chunk.isEmpty {
                finishChunk(piece, id: id, into: &payloads)
            } else {
                chunk.append(contentsOf: piece)
                let whole = chunk
                whole.withUnsafeBytes { finishChunk($0, id: id, into: &payloads) }
            }
            chunk.removeAll(keepingCapacity: true)
            sent = 0
        }
        if offset < bytes.count { chunk.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[offset...])) }
        if flush, chunk.count > sent {
            let whole = chunk
            whole.withUnsafeBytes { emitLiteral(UnsafeRawBufferPointer(rebasing: $0[sent...]), into: &payloads) }
            sent = chunk.count
        }
        closePayload(into: &payloads)
    }

    private mutating func closePayload(into payloads: inout [[UInt8]]) {
        if !payload.isEmpty {
            statistics.payloadBytes += payload.count
            payloads.append(payload)
            payload.removeAll(keepingCapacity: true)
        }
    }

    public mutating func finish(into payloads: inout [[UInt8]]) {
        if !chunk.isEmpty {
            let whole = chunk
            let id = hasher.finalizeAndReset()
            whole.withUnsafeBytes { finishChunk($0, id: id, into: &payloads) }
            chunk.removeAll(keepingCapacity: true)
            sent = 0
        }
        chunker.reset()
        closePayload(into: &payloads)
    }

    public mutating func supply(_ id: ChunkID) -> [UInt8]? {
        // A chunk too large for one payload (stored from a peer with larger chunks) cannot be supplied.
        guard var bytes = store.read(id), bytes.count + Frame.maxHeader <= maxPayload else {
            statistics.supplyFailures += 1
            return nil
        }
        var out: [UInt8] = []
        scratch.removeAll(keepingCapacity: true)
        if let z = bytes.withUnsafeBytes({ zstd.compress($0, appendingTo: &scratch) }) {
            out.append(Frame.RecordType.supplyZstd.rawValue)
            Frame.appendID(id, to: &out)
            Frame.appendU32(bytes.count, to: &out)
            Frame.appendU32(z, to: &out)
            out += scratch
        } else {
            out.append(Frame.RecordType.supply.rawValue)
            Frame.appendID(id, to: &out)
            Frame.appendU32(bytes.count, to: &out)
            out += bytes
        }
        bytes.removeAll()
        statistics.supplied += 1
        statistics.payloadBytes += out.count
        return out
    }

    // MARK: -

    private mutating func finishChunk(_ bytes: UnsafeRawBufferPointer, id: ChunkID, into payloads: inout [[UInt8]]) {
        statistics.chunks += 1
        let before = previous
        defer {
            if let before { store.recordSuccessor(id, after: before) }
            previous = id
        }
        if sent == 0, store.contains(id) {
            statistics.referencedChunks += 1
            statistics.referencedBytes += bytes.count
            room(33, &payloads)
            payload.append(Frame.RecordType.reference.rawValue)
            Frame.appendID(id, to: &payload)
            cursor = id
            return
        }
        // Where this stream stands in the one seen before: the chunk after the cursor is likely the old
        // version of this one (and the one after that, where an edit moved a cut).
        let base = cursor.flatMap { store.successor(of: $0) }
        cursor = base
        let features = Resemblance.features(bytes)
        if sent == 0 {
            var bases: [ChunkID] = []
            if let base, base != id {
                bases.append(base)
                if let next = store.successor(of: base), next != id, next != base { bases.append(next) }
            }
            // No base from the stream order, or a poor one: a stored chunk that resembles this one.
            if let like = store.similarChunk(features), like != id, !bases.contains(like) {
                if bases.count == 2 { bases[1] = like } else { bases.append(like) }
            }
            if !bases.isEmpty, emitDelta(bytes, bases: bases, into: &payloads) {
                statistics.deltaChunks += 1
            } else {
                emitLiteral(bytes, into: &payloads)
            }
        } else if bytes.count > sent {
            emitLiteral(UnsafeRawBufferPointer(rebasing: bytes[sent...]), into: &payloads)
        }
        room(33, &payloads)
        payload.append(Frame.RecordType.end.rawValue)
        Frame.appendID(id, to: &payload)
        store.insert(id, bytes)
        store.recordFeatures(features, of: id)
        statistics.newChunks += 1
    }

    /// Sends a whole new chunk compressed against `bases` (joined) when that beats compressing it alone.
    private mutating func emitDelta(_ bytes: UnsafeRawBufferPointer, bases: [ChunkID], into payloads: inout [[UInt8]]) -> Bool {
        var dictionary: [UInt8] = []
        var used: [ChunkID] = []
        for b in bases {
            guard store.read(b, appendingTo: &dictionary) else { break }
            used.append(b)
        }
        guard !used.isEmpty else { return false }
        scratch.removeAll(keepingCapacity: true)
        guard let z = dictionary.withUnsafeBytes({ zstd.compress(bytes, prefix: $0, appendingTo: &scratch) }) else { return false }
        var plain: [UInt8] = []
        if let alone = zstd.compress(bytes, appendingTo: &plain), alone <= z + 32 * used.count { return false }
        statistics.literalBytes += bytes.count
        room(Frame.maxHeader + z, &payloads)
        payload.append(Frame.RecordType.delta.rawValue)
        payload.append(UInt8(used.count))
        for b in used { Frame.appendID(b, to: &payload) }
        Frame.appendU32(bytes.count, to: &payload)
        Frame.appendU32(z, to: &payload)
        payload += scratch
        return true
    }

    private mutating func emitLiteral(_ bytes: UnsafeRawBufferPointer, into payloads: inout [[UInt8]]) {
        var offset = 0
        while offset < bytes.count {
            let piece = UnsafeRawBufferPointer(rebasing: bytes[offset..<min(bytes.count, offset + maxPayload - 9)])
            offset += piece.count
            statistics.literalBytes += piece.count
            scratch.removeAll(keepingCapacity: true)
            if let z = zstd.compress(piece, appendingTo: &scratch) {
                room(9 + z, &payloads)
                payload.append(Frame.RecordType.literalZstd.rawValue)
                Frame.appendU32(piece.count, to: &payload)
                Frame.appendU32(z, to: &payload)
                payload += scratch
            } else {
                room(5 + piece.count, &payloads)
                payload.append(Frame.RecordType.literal.rawValue)
                Frame.appendU32(piece.count, to: &payload)
                payload.append(contentsOf: piece)
            }
        }
    }

    /// Closes the payload being built when a record of `size` bytes would not fit in it.
    private mutating func room(_ size: Int, _ payloads: inout [[UInt8]]) {
        if payload.count + size > maxPayload { closePayload(into: &payloads) }
    }
}

/// What one encoder did, for the optimizer's counters.
public struct EncoderStatistics: Sendable, Equatable {
    /// Stream bytes given to `encode`.
    public var bytesIn = 0
    /// Bytes of the payloads produced (supply answers included): what crosses the WAN, before channel framing.
    public var payloadBytes = 0
    public var chunks = 0
    public var referencedChunks = 0
    public var referencedBytes = 0
    public var newChunks = 0
    /// New chunks sent as a delta against an older chunk.
    public var deltaChunks = 0
    /// Stream bytes sent as literals or deltas (before compression).
    public var literalBytes = 0
    public var supplied = 0
    public var supplyFailures = 0
}

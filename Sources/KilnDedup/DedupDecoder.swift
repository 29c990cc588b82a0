/// The receiving side of one flow direction. Literal bytes are delivered as they arrive (they are the bytes the
/// peer sent) and collected until their chunk's end record, whose id must be their hash before the chunk is
/// stored. A reference is delivered from the store, whose reads check the hash; when the store lacks the chunk
/// (evicted, corrupt, or the store was lost) the decoder returns its id for the channel to ask the peer, and holds
/// back everything after it until the supply arrives and hashes right. No byte is ever delivered out of order or
/// from a chunk that failed its hash.
public struct DedupDecoder: FlowDecoder {
    public let store: ChunkStore
    /// The largest chunk accepted from the peer.
    public let maxChunkSize: Int
    /// The most bytes held back behind a missing chunk before the flow is failed.
    public let maxHeldBytes: Int
    public private(set) var statistics = DecoderStatistics()

    private enum Held { case bytes([UInt8]), reference(ChunkID) }

    /// Literal bytes of the chunk in progress.
    private var current: [UInt8] = []
    private var held: [Held] = []
    private var heldStart = 0
    private var heldBytes = 0
    private var requested: Set<ChunkID> = []
    /// Supplied chunks, kept until the held-back items are delivered (the store might not keep them).
    private var supplied: [ChunkID: [UInt8]] = [:]
    private var scratch: [UInt8] = []
    private let zstd = ZstdDecompressor()

    public init(store: ChunkStore, maxChunkSize: Int = 1 << 20, maxHeldBytes: Int = 64 << 20) {
        self.store = store
        self.maxChunkSize = maxChunkSize
        self.maxHeldBytes = maxHeldBytes
    }

    /// True while output waits for a chunk from the peer.
    public var isStalled: Bool { heldStart < held.count }

    /// On an error nothing of this payload is delivered: a literal whose chunk ends in the same payload is
    /// delivered only once its hash checked out.
    public mutating func decode(_ payload: UnsafeRawBufferPointer, into output: inout [UInt8]) throws(CodecError) -> [ChunkID] {
        let start = output.count
        do throws(CodecError) {
            return try decodeRecords(payload, &output)
        } catch {
            output.removeSubrange(start...)
            throw error
        }
    }

    private mutating func decodeRecords(_ payload: UnsafeRawBufferPointer, _ output: inout [UInt8]) throws(CodecError) -> [ChunkID] {
        statistics.payloadBytes += payload.count
        var missing: [ChunkID] = []
        for record in try Frame.parse(payload, maxChunkSize: maxChunkSize) {
            switch record {
            case .literal(let range):
                try checkRoom(range.count)
                literal(UnsafeRawBufferPointer(rebasing: payload[range]), &output)
            case .literalZstd(let length, let frame):
                scratch.removeAll(keepingCapacity: true)
                guard zstd.decompress(UnsafeRawBufferPointer(rebasing: payload[frame]), expected: length, appendingTo: &scratch) else {
                    throw CodecError("literal zstd frame does not decompress to its \(length) bytes")
                }
                try checkRoom(length)
                let bytes = scratch
                bytes.withUnsafeBytes { literal($0, &output) }
            case .end(let id):
                guard !current.isEmpty else { throw CodecError("chunk end \(id) without chunk bytes") }
                guard current.withUnsafeBytes({ ChunkID(hashing: $0) }) == id else {
                    throw CodecError("chunk \(id): the bytes sent do not hash to it")
                }
                store.insert(id, current)
                statistics.newChunks += 1
                current.removeAll(keepingCapacity: true)
            case .reference(let id):
                guard current.isEmpty else { throw CodecError("reference \(id) inside an unfinished chunk") }
                statistics.referencedChunks += 1
                if !isStalled {
                    let before = output.count
                    if store.read(id, appendingTo: &output) {
                        statistics.bytesOut += output.count - before
                        continue
                    }
                    statistics.storeMisses += 1
                } else if supplied[id] != nil || store.contains(id) {
                    hold(.reference(id))
                    continue
                } else {
                    statistics.storeMisses += 1
                }
                hold(.reference(id))
                if requested.insert(id).inserted { missing.append(id) }
            case .supply(let id, let range):
                try supply(id, Array(payload[range]))
            case .supplyZstd(let id, let length, let frame):
                scratch.removeAll(keepingCapacity: true)
                guard zstd.decompress(UnsafeRawBufferPointer(rebasing: payload[frame]), expected: length, appendingTo: &scratch) else {
                    throw CodecError("supply of \(id): zstd frame does not decompress to its \(length) bytes")
                }
                try supply(id, scratch)
            }
            guard heldBytes <= maxHeldBytes else {
                throw CodecError("more than \(maxHeldBytes) bytes held back behind missing chunks")
            }
        }
        drain(&output, &missing)
        return missing
    }

    // MARK: -

    private func checkRoom(_ count: Int) throws(CodecError) {
        guard current.count + count <= maxChunkSize else {
            throw CodecError("chunk in progress exceeds \(maxChunkSize) bytes")
        }
    }

    private mutating func literal(_ bytes: UnsafeRawBufferPointer, _ output: inout [UInt8]) {
        current.append(contentsOf: bytes)
        if isStalled {
            hold(.bytes(Array(bytes)))
        } else {
            output.append(contentsOf: bytes)
            statistics.bytesOut += bytes.count
        }
    }

    private mutating func supply(_ id: ChunkID, _ bytes: [UInt8]) throws(CodecError) {
        guard requested.remove(id) != nil else { throw CodecError("chunk \(id) supplied but never asked for") }
        guard ChunkID(hashing: bytes) == id else { throw CodecError("supplied chunk \(id): bytes do not hash to it") }
        store.insert(id, bytes)
        supplied[id] = bytes
        statistics.suppliedChunks += 1
    }

    private mutating func hold(_ item: Held) {
        if case .bytes(let b) = item { heldBytes += b.count }
        held.append(item)
    }

    /// Delivers held-back items up to the first chunk still missing; asks again for one the store lost since.
    private mutating func drain(_ output: inout [UInt8], _ missing: inout [ChunkID]) {
        while heldStart < held.count {
            switch held[heldStart] {
            case .bytes(let b):
                output += b
                statistics.bytesOut += b.count
                heldBytes -= b.count
            case .reference(let id):
                if let b = supplied[id] {
                    output += b
                    statistics.bytesOut += b.count
                } else {
                    let before = output.count
                    guard store.read(id, appendingTo: &output) else {
                        if !requested.contains(id) {
                            requested.insert(id)
                            missing.append(id)
                            statistics.storeMisses += 1
                        }
                        return
                    }
                    statistics.bytesOut += output.count - before
                }
            }
            heldStart += 1
        }
        held.removeAll(keepingCapacity: true)
        heldStart = 0
        heldBytes = 0
        supplied.removeAll()
    }
}

/// What one decoder did, for the optimizer's counters.
public struct DecoderStatistics: Sendable, Equatable {
    public var payloadBytes = 0
    /// Stream bytes delivered.
    public var bytesOut = 0
    public var referencedChunks = 0
    public var newChunks = 0
    /// References the store could not serve (asked from the peer).
    public var storeMisses = 0
    public var suppliedChunks = 0
}

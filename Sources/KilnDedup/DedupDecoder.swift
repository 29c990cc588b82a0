/// The receiving side of one flow direction. Literal bytes are delivered as they arrive (they are the bytes the
/// peer sent) and collected until their chunk's end record, whose id must be their hash before the chunk is
/// stored. References and delta bases come from the store, whose reads check the hash; when the store lacks one
/// (evicted, corrupt, or the store was lost) the decoder returns its id for the channel to ask the peer, and holds
/// back every later record until the supply arrives and hashes right. Bytes are never delivered out of order or
/// from a chunk that failed its hash.
public struct DedupDecoder: FlowDecoder {
    public let store: ChunkStore
    /// The largest chunk accepted from the peer.
    public let maxChunkSize: Int
    /// The most bytes held back behind a missing chunk before the flow is failed.
    public let maxHeldBytes: Int
    public private(set) var statistics = DecoderStatistics()

    /// A stream record that waits behind a missing chunk (literals already decompressed).
    private enum Held {
        case literal([UInt8])
        case delta(bases: [ChunkID], length: Int, frame: [UInt8])
        case end(ChunkID)
        case reference(ChunkID)
    }

    /// Bytes of the chunk in progress.
    private var current: [UInt8] = []
    private var held: [Held] = []
    private var heldStart = 0
    private var heldBytes = 0
    private var requested: Set<ChunkID> = []
    /// Supplied chunks, kept until the held-back records are done (the store might not keep them).
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
            let item: Held
            switch record {
            case .literal(let range):
                item = .literal(Array(payload[range]))
            case .literalZstd(let length, let frame):
                var bytes: [UInt8] = []
                guard zstd.decompress(UnsafeRawBufferPointer(rebasing: payload[frame]), expected: length, appendingTo: &bytes) else {
                    throw CodecError("literal zstd frame does not decompress to its \(length) bytes")
                }
                item = .literal(bytes)
            case .delta(let bases, let length, let frame):
                item = .delta(bases: bases, length: length, frame: Array(payload[frame]))
            case .end(let id):
                item = .end(id)
            case .reference(let id):
                item = .reference(id)
            case .supply(let id, let range):
                try supply(id, Array(payload[range]))
                continue
            case .supplyZstd(let id, let length, let frame):
                var bytes: [UInt8] = []
                guard zstd.decompress(UnsafeRawBufferPointer(rebasing: payload[frame]), expected: length, appendingTo: &bytes) else {
                    throw CodecError("supply of \(id): zstd frame does not decompress to its \(length) bytes")
                }
                try supply(id, bytes)
                continue
            }
            if isStalled {
                // Ask at once for every chunk the held records will need, not one round trip each.
                var needed: [ChunkID] = []
                switch item {
                case .reference(let id): needed = [id]
                case .delta(let bases, _, _): needed = bases
                default: break
                }
                for id in needed where supplied[id] == nil && !store.contains(id) && requested.insert(id).inserted {
                    missing.append(id)
                    statistics.storeMisses += 1
                }
                hold(item)
                guard heldBytes <= maxHeldBytes else {
                    throw CodecError("more than \(maxHeldBytes) bytes held back behind missing chunks")
                }
            } else if let lacking = try apply(item, &output) {
                hold(item)
                if requested.insert(lacking).inserted { missing.append(lacking) }
            }
        }
        try drain(&output, &missing)
        return missing
    }

    // MARK: -

    /// Carries out one stream record; returns the chunk it needs and lacks (doing nothing then).
    private mutating func apply(_ item: Held, _ output: inout [UInt8]) throws(CodecError) -> ChunkID? {
        switch item {
        case .literal(let bytes):
            try literal(bytes, &output)
        case .delta(let bases, let length, let frame):
            guard current.isEmpty else { throw CodecError("delta inside an unfinished chunk") }
            var dictionary: [UInt8] = []
            for base in bases {
                if let b = supplied[base] { dictionary += b; continue }
                guard store.read(base, appendingTo: &dictionary) else { statistics.storeMisses += 1; return base }
            }
            var bytes: [UInt8] = []
            let ok = frame.withUnsafeBytes { f in
                dictionary.withUnsafeBytes { d in zstd.decompress(f, expected: length, prefix: d, appendingTo: &bytes) }
            }
            guard ok else { throw CodecError("delta against \(bases) does not decompress to its \(length) bytes") }
            statistics.deltaChunks += 1
            try literal(bytes, &output)
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
            if let b = supplied[id] {
                output += b
                statistics.bytesOut += b.count
            } else {
                let before = output.count
                guard store.read(id, appendingTo: &output) else { statistics.storeMisses += 1; return id }
                statistics.bytesOut += output.count - before
            }
            statistics.referencedChunks += 1
        }
        return nil
    }

    private mutating func literal(_ bytes: [UInt8], _ output: inout [UInt8]) throws(CodecError) {
        guard current.count + bytes.count <= maxChunkSize else {
            throw CodecError("chunk in progress exceeds \(maxChunkSize) bytes")
        }
        current += bytes
        output += bytes
        statistics.bytesOut += bytes.count
    }

    private mutating func supply(_ id: ChunkID, _ bytes: [UInt8]) throws(CodecError) {
        guard requested.remove(id) != nil else { throw CodecError("chunk \(id) supplied but never asked for") }
        guard ChunkID(hashing: bytes) == id else { throw CodecError("supplied chunk \(id): bytes do not hash to it") }
        store.insert(id, bytes)
        supplied[id] = bytes
        statistics.suppliedChunks += 1
    }

    /// A held reference or chunk end counts as 1 KiB, so a peer cannot grow the queue without bound with them.
    private mutating func hold(_ item: Held) {
        switch item {
        case .literal(let b): heldBytes += b.count
        case .delta(_, _, let f): heldBytes += f.count + 1024
        case .end, .reference: heldBytes += 1024
        }
        held.append(item)
    }

    /// Carries out held records up to the first whose chunk is still missing (asking again for one the store
    /// lost since it was checked).
    private mutating func drain(_ output: inout [UInt8], _ missing: inout [ChunkID]) throws(CodecError) {
        while heldStart < held.count {
            if let lacking = try apply(held[heldStart], &output) {
                if requested.insert(lacking).inserted { missing.append(lacking) }
                return
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
    /// New chunks that came as a delta against a stored one.
    public var deltaChunks = 0
    /// Chunks the store could not serve (asked from the peer).
    public var storeMisses = 0
    public var suppliedChunks = 0
}

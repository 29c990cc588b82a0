/// The codec's payload format: a payload is a sequence of records, each a type byte and fields in little-endian
/// order. A record never spans payloads.
///
///     0x01 literal        [u32 n][n bytes]                 stream bytes of the chunk in progress
///     0x02 literal zstd   [u32 n][u32 z][z bytes]          the same, one zstd frame holding n bytes
///     0x03 end            [32-byte id]                     the chunk in progress ends; its bytes hash to id
///     0x04 reference      [32-byte id]                     a whole chunk the receiver holds
///     0x05 supply         [32-byte id][u32 n][n bytes]     a chunk the receiver asked for (not stream bytes)
///     0x06 supply zstd    [32-byte id][u32 n][u32 z][z]    the same, compressed
///     0x07 delta          [u8 k][k 32-byte ids][u32 n][u32 z][z]
///                                                          a whole chunk's n bytes as a zstd frame compressed
///                                                          against chunks id1..idk (1 or 2) joined as a
///                                                          raw-content prefix: the old version of an edited
///                                                          chunk and the one after it, typically
public enum Frame {
    public enum RecordType: UInt8 {
        case literal = 1, literalZstd = 2, end = 3, reference = 4, supply = 5, supplyZstd = 6, delta = 7
    }

    /// One parsed record; byte ranges point into the payload.
    public enum Record: Equatable {
        case literal(Range<Int>)
        case literalZstd(length: Int, frame: Range<Int>)
        case end(ChunkID)
        case reference(ChunkID)
        case supply(ChunkID, Range<Int>)
        case supplyZstd(ChunkID, length: Int, frame: Range<Int>)
        case delta(bases: [ChunkID], length: Int, frame: Range<Int>)
    }

    /// Largest record header (a delta against two chunks).
    public static let maxHeader = 1 + 1 + 2 * 32 + 4 + 4
    /// The most chunks a delta is compressed against.
    public static let maxDeltaBases = 2

    /// Parses a whole payload. Every length is checked against the payload and `maxChunkSize`; an empty payload,
    /// an unknown type, a zero length or a truncated field throws, naming the record's offset.
    public static func parse(_ payload: UnsafeRawBufferPointer, maxChunkSize: Int) throws(CodecError) -> [Record] {
        var records: [Record] = []
        var at = 0
        let count = payload.count
        guard count > 0 else { throw CodecError("empty payload") }
        func u32(_ offset: Int) -> Int { Int(UInt32(littleEndian: payload.loadUnaligned(fromByteOffset: offset, as: UInt32.self))) }
        func need(_ n: Int, _ start: Int, _ what: String) throws(CodecError) {
            guard count - at >= n else { throw CodecError("\(what) record at offset \(start) truncated") }
        }
        func id(_ what: String, _ start: Int) throws(CodecError) -> ChunkID {
            try need(32, start, what)
            defer { at += 32 }
            return ChunkID(digest: UnsafeRawBufferPointer(rebasing: payload[at..<(at + 32)]))
        }
        func length(_ what: String, _ start: Int) throws(CodecError) -> Int {
            try need(4, start, what)
            let n = u32(at)
            at += 4
            guard n > 0, n <= maxChunkSize else {
                throw CodecError("\(what) record at offset \(start): length \(n) outside 1...\(maxChunkSize)")
            }
            return n
        }
        func bytes(_ n: Int, _ what: String, _ start: Int) throws(CodecError) -> Range<Int> {
            try need(n, start, what)
            defer { at += n }
            return at..<(at + n)
        }
        func compressed(_ what: String, _ start: Int) throws(CodecError) -> Range<Int> {
            try need(4, start, what)
            let z = u32(at)
            at += 4
            guard z > 0, z <= maxChunkSize + maxChunkSize / 64 + 1024 else {
                throw CodecError("\(what) record at offset \(start): compressed length \(z) out of range")
            }
            return try bytes(z, what, start)
        }
        while at < count {
            let start = at
            let type = payload[at]
            at += 1
            switch RecordType(rawValue: type) {
            case .literal:
                let n = try length("literal", start)
                records.append(.literal(try bytes(n, "literal", start)))
            case .literalZstd:
                let n = try length("literal zstd", start)
                records.append(.literalZstd(length: n, frame: try compressed("literal zstd", start)))
            case .end: records.append(.end(try id("end", start)))
            case .reference: records.append(.reference(try id("reference", start)))
            case .supply:
                let chunk = try id("supply", start)
                let n = try length("supply", start)
                records.append(.supply(chunk, try bytes(n, "supply", start)))
            case .supplyZstd:
                let chunk = try id("supply zstd", start)
                let n = try length("supply zstd", start)
                records.append(.supplyZstd(chunk, length: n, frame: try compressed("supply zstd", start)))
            case .delta:
                try need(1, start, "delta")
                let k = Int(payload[at])
                at += 1
                guard (1...maxDeltaBases).contains(k) else {
                    throw CodecError("delta record at offset \(start): \(k) bases, not 1...\(maxDeltaBases)")
                }
                var bases: [ChunkID] = []
                for _ in 0..<k { bases.append(try id("delta", start)) }
                let n = try length("delta", start)
                records.append(.delta(bases: bases, length: n, frame: try compressed("delta", start)))
            case nil: throw CodecError("unknown record type \(type) at offset \(start)")
            }
        }
        return records
    }

    // MARK: - Writing

    static func appendU32(_ v: Int, to out: inout [UInt8]) {
        let u = UInt32(v)
        out.append(UInt8(truncatingIfNeeded: u)); out.append(UInt8(truncatingIfNeeded: u >> 8))
        out.append(UInt8(truncatingIfNeeded: u >> 16)); out.append(UInt8(truncatingIfNeeded: u >> 24))
    }

    static func appendID(_ id: ChunkID, to out: inout [UInt8]) {
        let start = out.count
        out.append(contentsOf: repeatElement(0, count: 32))
        id.write(to: &out, at: start)
    }
}

import CKilnHash

/// Content-defined chunking with FastCDC (Xia et al., USENIX ATC 2016): a gear rolling hash, no cut before
/// `minSize`, a stricter mask up to `averageSize` and a looser one after it (normalized chunking, level 2), a
/// forced cut at `maxSize`. A cut depends only on the bytes since the previous cut, never on how the stream was
/// split into writes, so the same content chunks the same way on every send.
public struct Chunker: Sendable {
    public let minSize: Int
    public let averageSize: Int
    public let maxSize: Int
    private var state: kiln_cdc

    /// Bytes of the current chunk seen so far.
    public var position: Int { Int(state.position) }

    /// Chunk sizes a chunker accepts: power-of-two averages from 256 B to 4 MiB.
    public static let averageRange = 256...(4 << 20)

    /// `averageSize` is a power of two in `averageRange`; the minimum is a quarter of it and the maximum eight
    /// times it less 256 bytes (the FastCDC paper's 2 KiB / 8 KiB / 64 KiB for the default, trimmed so that a
    /// default chunk plus its record header fits a 64 KiB frame).
    public init(averageSize: Int = 8192) throws(ChunkerError) {
        guard Chunker.averageRange.contains(averageSize), averageSize & (averageSize - 1) == 0 else {
            throw ChunkerError("average chunk size \(averageSize) is not a power of two between "
                + "\(Chunker.averageRange.lowerBound) and \(Chunker.averageRange.upperBound)")
        }
        self.averageSize = averageSize
        minSize = averageSize / 4
        maxSize = averageSize * 8 - 256
        let bits = averageSize.trailingZeroBitCount
        state = kiln_cdc(fp: 0, mask_s: Chunker.mask(ones: bits + 2), mask_l: Chunker.mask(ones: bits - 2),
                         min_size: UInt32(minSize), avg_size: UInt32(averageSize), max_size: UInt32(maxSize), position: 0)
    }

    /// `ones` bits spread over the top 48 bits of the hash: a bit k places up from the bottom of a gear hash depends
    /// on the last k+1 bytes, so high bits give every mask a window of at least 16 bytes.
    static func mask(ones: Int) -> UInt64 {
        var m: UInt64 = 0
        for i in 0..<ones { m |= 1 << UInt64(63 - i * 48 / ones) }
        return m
    }

    /// Scans `bytes`, which continue the stream. Returns how many of them complete the current chunk (a cut
    /// after that many), or nil when all of them belong to a chunk that goes on. After a cut, the next call
    /// starts a new chunk: pass the bytes after the cut.
    public mutating func nextCut(in bytes: UnsafeRawBufferPointer) -> Int? {
        scan(bytes, nil)
    }

    /// The same, hashing the scanned bytes into `hasher` as it goes (the chunk's id, once it is cut): the gear
    /// loop and SHA-256 overlap in the CPU, about twice as fast as one pass after the other.
    public mutating func nextCut(in bytes: UnsafeRawBufferPointer, hashingInto hasher: inout KilnSHA256) -> Int? {
        hasher.withContext { scan(bytes, $0) }
    }

    /// Every chunk that ends within `bytes` (which continue the stream), in order: its end (an offset into `bytes`,
    /// after its last byte) and its id, appended to `cuts`. The bytes after the last end belong to the chunk that goes
    /// on; `hasher` holds its hash so far. The same cuts and ids as `nextCut(in:hashingInto:)` in a loop, faster on
    /// SHA-NI: a chunk's hash is finished while the next chunk is scanned, two SHA-256 chains side by side.
    public mutating func cuts(in bytes: UnsafeRawBufferPointer, hashingInto hasher: inout KilnSHA256,
                              appendingTo cuts: inout [(end: Int, id: ChunkID)]) {
        guard bytes.count > 0, let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return }
        let capacity = 64
        typealias Digest = (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                            UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8)
        withUnsafeTemporaryAllocation(of: Int.self, capacity: capacity) { ends in
            withUnsafeTemporaryAllocation(byteCount: 32 * capacity, alignment: 8) { raw in
                let digests = raw.bindMemory(to: Digest.self)
                var offset = 0
                while offset < bytes.count {
                    var consumed = 0
                    let count = Gear.table.withUnsafeBufferPointer { gear in
                        hasher.withContext { ctx in
                            kiln_cdc_chunks(&state, gear.baseAddress, ctx, base + offset, bytes.count - offset,
                                            ends.baseAddress, digests.baseAddress, capacity, &consumed)
                        }
                    }
                    for i in 0..<count {
                        let d = UnsafeRawPointer(raw.baseAddress!) + 32 * i
                        cuts.append((offset + ends[i], ChunkID(bytes: (
                            UInt64(bigEndian: d.loadUnaligned(as: UInt64.self)), UInt64(bigEndian: d.loadUnaligned(fromByteOffset: 8, as: UInt64.self)),
                            UInt64(bigEndian: d.loadUnaligned(fromByteOffset: 16, as: UInt64.self)),
                            UInt64(bigEndian: d.loadUnaligned(fromByteOffset: 24, as: UInt64.self))))))
                    }
                    offset += consumed
                }
            }
        }
    }

    private mutating func scan(_ bytes: UnsafeRawBufferPointer, _ ctx: UnsafeMutablePointer<kiln_sha256_ctx>?) -> Int? {
        guard bytes.count > 0, let base = bytes.baseAddress else { return nil }
        var cut: Int32 = 0
        let n = Gear.table.withUnsafeBufferPointer { gear in
            kiln_cdc_next(&state, gear.baseAddress, ctx, base.assumingMemoryBound(to: UInt8.self), bytes.count, &cut)
        }
        return cut != 0 ? n : nil
    }

    /// Ends the current chunk where the stream ends.
    public mutating func reset() { state.position = 0; state.fp = 0 }
}

/// A chunker setting out of range.
public struct ChunkerError: Error, Sendable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

/// The gear table: 256 fixed pseudo-random 64-bit values (SplitMix64 from a fixed seed). Both optimizers must use
/// the same table, so it never changes.
enum Gear {
    static let table: [UInt64] = {
        var state: UInt64 = 0x4B49_4C4E_4744_4350 // "KILNGDCP"
        return (0..<256).map { _ in
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }()
}

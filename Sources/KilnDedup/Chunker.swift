/// Content-defined chunking with FastCDC (Xia et al., USENIX ATC 2016): a gear rolling hash, no cut before
/// `minSize`, a stricter mask up to `averageSize` and a looser one after it (normalized chunking, level 2), a
/// forced cut at `maxSize`. A cut depends only on the bytes since the previous cut, never on how the stream was
/// split into writes, so the same content chunks the same way on every send.
public struct Chunker: Sendable {
    public let minSize: Int
    public let averageSize: Int
    public let maxSize: Int
    private let maskS: UInt64
    private let maskL: UInt64
    /// Bytes of the current chunk seen so far.
    public private(set) var position = 0
    private var fp: UInt64 = 0

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
        maskS = Chunker.mask(ones: bits + 2)
        maskL = Chunker.mask(ones: bits - 2)
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
        let count = bytes.count
        guard count > 0, let base = bytes.baseAddress else { return nil }
        let p = base.assumingMemoryBound(to: UInt8.self)
        var i = 0
        if position < minSize {
            i = Swift.min(minSize - position, count)
            position += i
            if position < minSize { return nil }
        }
        var fp = self.fp
        return Gear.table.withUnsafeBufferPointer { gearBuffer -> Int? in
            let gear = gearBuffer.baseAddress!
            if position < averageSize {
                let start = i, end = Swift.min(count, i + averageSize - position)
                let m = maskS
                while i < end {
                    fp = (fp << 1) &+ gear[Int(p[i])]
                    i += 1
                    if fp & m == 0 { return cut(at: i) }
                }
                position += end - start
                if position < averageSize { self.fp = fp; return nil }
            }
            let start = i, end = Swift.min(count, i + maxSize - position)
            let m = maskL
            while i < end {
                fp = (fp << 1) &+ gear[Int(p[i])]
                i += 1
                if fp & m == 0 { return cut(at: i) }
            }
            position += end - start
            if position == maxSize { return cut(at: i) }
            self.fp = fp
            return nil
        }
    }

    /// Ends the current chunk where the stream ends.
    public mutating func reset() { position = 0; fp = 0 }

    private mutating func cut(at i: Int) -> Int { reset(); return i }
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

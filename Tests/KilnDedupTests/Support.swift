import KilnTestSupport
import KilnDedup

func randomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var rng = SplitMix(state: seed)
    var out = [UInt8](repeating: 0, count: count)
    out.withUnsafeMutableBytes { b in
        var i = 0
        while i + 8 <= count { b.storeBytes(of: rng.next(), toByteOffset: i, as: UInt64.self); i += 8 }
        while i < count { b[i] = UInt8(truncatingIfNeeded: rng.next()); i += 1 }
    }
    return out
}

/// Text-like bytes that compress (words from a small vocabulary), for codec tests that need zstd to help.
func textBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var rng = SplitMix(state: seed)
    let words = ["kiln", "chunk", "store", "flow", "optimizer", "segment", "the", "a", "of", "bytes", "peer",
                 "reference", "zstd", "hash", "window", "gear", "table", "\n", "firmware", "appliance"]
    var out: [UInt8] = []
    out.reserveCapacity(count + 16)
    while out.count < count {
        out += Array(words[Int(rng.next() % UInt64(words.count))].utf8)
        out.append(rng.next() % 7 == 0 ? UInt8(ascii: "0") + UInt8(rng.next() % 10) : 0x20)
    }
    return Array(out.prefix(count))
}

/// Cut offsets (chunk ends) of `data` fed to a chunker in pieces of the given sizes (cycled).
func cuts(_ data: [UInt8], averageSize: Int = 8192, pieces: [Int]) throws -> [Int] {
    var chunker = try Chunker(averageSize: averageSize)
    var result: [Int] = []
    var offset = 0, piece = 0
    data.withUnsafeBytes { all in
        while offset < data.count {
            let end = min(data.count, offset + pieces[piece % pieces.count])
            piece += 1
            var at = offset
            while at < end, let n = chunker.nextCut(in: UnsafeRawBufferPointer(rebasing: all[at..<end])) {
                at += n
                result.append(at)
            }
            offset = end
        }
    }
    if result.last != data.count { result.append(data.count) }
    return result
}

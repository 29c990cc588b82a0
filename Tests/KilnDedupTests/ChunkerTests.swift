import KilnTestSupport
@testable import KilnDedup
import Testing

@Suite struct ChunkerTests {
    @Test func boundariesDoNotDependOnWriteSizes() throws {
        let data = randomBytes(3 << 20, seed: 1) + textBytes(1 << 20, seed: 2)
        let whole = try cuts(data, pieces: [data.count])
        #expect(whole.count > 100)
        var rng = SplitMix(state: 3)
        for _ in 0..<4 {
            let pieces = (0..<64).map { _ in Int.random(in: 1...100_000, using: &rng) }
            #expect(try cuts(data, pieces: pieces) == whole)
        }
        #expect(try cuts(data, pieces: [1, 7, 4095, 4096, 65536, 3]) == whole)
        #expect(try cuts(Array(data.prefix(200_000)), pieces: [1]) == whole.filter { $0 < 200_000 } + [200_000])
    }

    @Test(arguments: [1024, 8192, 65536]) func sizesStayInBounds(_ average: Int) throws {
        let data = randomBytes(8 << 20, seed: UInt64(average))
        let ends = try cuts(data, averageSize: average, pieces: [1 << 20])
        let chunker = try Chunker(averageSize: average)
        var sizes: [Int] = []
        var previous = 0
        for end in ends { sizes.append(end - previous); previous = end }
        for size in sizes.dropLast() { #expect(size >= chunker.minSize && size <= chunker.maxSize) }
        let mean = Double(data.count) / Double(sizes.count)
        // Normalized chunking keeps the mean near the configured average (slightly above: no cut before min).
        #expect(mean > Double(average) * 0.8 && mean < Double(average) * 1.6, "mean \(mean) for \(average)")
        // The distribution is narrow: few chunks hit the forced maximum.
        #expect(sizes.filter { $0 == chunker.maxSize }.count * 100 < sizes.count)
    }

    @Test func anInsertionChangesOnlyNearbyChunks() throws {
        let data = textBytes(2 << 20, seed: 5) + randomBytes(2 << 20, seed: 6)
        var edited = data
        edited.insert(contentsOf: Array("inserted here".utf8), at: 1_000_000)
        edited.removeSubrange(3_000_000..<3_000_100)
        func chunks(_ d: [UInt8]) throws -> Set<ChunkID> {
            var previous = 0
            return Set(try cuts(d, pieces: [d.count]).map { end in
                defer { previous = end }
                return d.withUnsafeBytes { ChunkID(hashing: UnsafeRawBufferPointer(rebasing: $0[previous..<end])) }
            })
        }
        let a = try chunks(data), b = try chunks(edited)
        #expect(b.subtracting(a).count <= 6, "\(b.subtracting(a).count) new chunks of \(b.count)")
    }

    /// Hashing while scanning gives every chunk the id a separate SHA-256 of its bytes gives, however the stream
    /// is split (the hash buffers partial blocks across calls).
    @Test func fusedHashingMatchesSeparateHashing() throws {
        let data = textBytes(1 << 20, seed: 7) + randomBytes(1 << 20, seed: 8)
        var rng = SplitMix(state: 9)
        for round in 0..<3 {
            var chunker = try Chunker(averageSize: round == 0 ? 8192 : 1024)
            var hasher = try #require(KilnSHA256(implementation: round == 2 ? .portable : .best))
            var ids: [ChunkID] = [], expected: [ChunkID] = [], positions: [Int] = []
            var start = 0, offset = 0
            data.withUnsafeBytes { all in
                while offset < data.count {
                    let end = min(data.count, offset + Int.random(in: 1...30_000, using: &rng))
                    var at = offset
                    while at < end, let n = chunker.nextCut(in: UnsafeRawBufferPointer(rebasing: all[at..<end]), hashingInto: &hasher) {
                        at += n
                        positions.append(at)
                        ids.append(hasher.finalizeAndReset())
                        expected.append(ChunkID(hashing: UnsafeRawBufferPointer(rebasing: all[start..<at])))
                        start = at
                    }
                    offset = end
                }
            }
            #expect(ids.count > 100)
            #expect(ids == expected)
            // The same cuts as scanning without hashing.
            let plain = try cuts(data, averageSize: round == 0 ? 8192 : 1024, pieces: [data.count])
            #expect(Array(plain.prefix(positions.count)) == positions)
        }
    }

    /// FastCDC as the definition says, one byte at a time: for each chunk the gear hash starts at zero at the minimum
    /// size, the strict mask applies before the average and the loose one after, and the maximum forces a cut.
    static func referenceCuts(_ data: [UInt8], averageSize: Int) throws -> [Int] {
        let c = try Chunker(averageSize: averageSize)
        let bits = averageSize.trailingZeroBitCount
        let strict = Chunker.mask(ones: bits + 2), loose = Chunker.mask(ones: bits - 2)
        var result: [Int] = []
        var start = 0
        while start < data.count {
            var end = min(data.count, start + c.maxSize)
            var fp: UInt64 = 0
            var o = c.minSize
            while start + o < end {
                fp = (fp << 1) &+ Gear.table[Int(data[start + o])]
                if fp & (o < averageSize ? strict : loose) == 0 { end = start + o + 1; break }
                o += 1
            }
            result.append(end)
            start = end
        }
        return result
    }

    /// The scanning kernels (the hash trailing the scan, four gear bytes at a time, two chunks hashed at once in
    /// cuts(in:), partial blocks carried between calls) cut exactly where the byte-at-a-time definition does and give
    /// every chunk its SHA-256, for every average, write pattern and SHA-256 implementation; long runs of one byte
    /// reach the forced maximum.
    @Test func cutsAndIdsMatchTheReference() throws {
        let data = textBytes(600_000, seed: 21) + randomBytes(600_000, seed: 22) + [UInt8](repeating: 0, count: 300_000)
            + textBytes(200_000, seed: 23)
        var rng = SplitMix(state: 24)
        for average in [256, 1024, 8192, 65536] {
            let reference = try ChunkerTests.referenceCuts(data, averageSize: average)
            #expect(reference.count >= 10)
            let limit = try Chunker(averageSize: average).maxSize
            if limit < 300_000 {  // the run of zeros: no cut, the maximum
                #expect(zip([0] + reference, reference).contains { $1 - $0 == limit }, "no chunk at the maximum for \(average)")
            }
            for maxPiece in [data.count, 100, 3000, 70_000] {
                let pieces = (0..<64).map { _ in Int.random(in: 1...maxPiece, using: &rng) }
                #expect(try cuts(data, averageSize: average, pieces: pieces) == reference, "average \(average), pieces up to \(maxPiece)")
                for implementation in [KilnSHA256.Implementation.best, .portable] {
                    var chunker = try Chunker(averageSize: average)
                    var hasher = try #require(KilnSHA256(implementation: implementation))
                    var ends: [Int] = [], ids: [ChunkID] = [], expected: [ChunkID] = []
                    var offset = 0, start = 0
                    data.withUnsafeBytes { all in
                        while offset < data.count {
                            let end = min(data.count, offset + Int.random(in: 1...maxPiece, using: &rng))
                            var at = offset
                            while at < end, let n = chunker.nextCut(in: UnsafeRawBufferPointer(rebasing: all[at..<end]), hashingInto: &hasher) {
                                at += n
                                ends.append(at)
                                ids.append(hasher.finalizeAndReset())
                                expected.append(ChunkID(hashing: UnsafeRawBufferPointer(rebasing: all[start..<at])))
                                start = at
                            }
                            offset = end
                        }
                    }
                    if ends.last != data.count {
                        ends.append(data.count)
                        ids.append(hasher.finalizeAndReset())
                        expected.append(data.withUnsafeBytes { ChunkID(hashing: UnsafeRawBufferPointer(rebasing: $0[start...])) })
                    }
                    #expect(ends == reference, "average \(average), pieces up to \(maxPiece), \(implementation)")
                    #expect(ids == expected, "average \(average), pieces up to \(maxPiece), \(implementation)")

                    // The same through cuts(in:), which finishes one chunk's hash while it scans the next.
                    var batch = try Chunker(averageSize: average)
                    var batchHasher = try #require(KilnSHA256(implementation: implementation))
                    var found: [(end: Int, id: ChunkID)] = []
                    offset = 0
                    data.withUnsafeBytes { all in
                        while offset < data.count {
                            let end = min(data.count, offset + Int.random(in: 1...maxPiece, using: &rng))
                            var piece: [(end: Int, id: ChunkID)] = []
                            batch.cuts(in: UnsafeRawBufferPointer(rebasing: all[offset..<end]), hashingInto: &batchHasher, appendingTo: &piece)
                            found += piece.map { (offset + $0.end, $0.id) }
                            offset = end
                        }
                    }
                    if found.last?.end != data.count { found.append((data.count, batchHasher.finalizeAndReset())) }
                    #expect(found.map(\.end) == reference, "cuts(in:): average \(average), pieces up to \(maxPiece), \(implementation)")
                    #expect(found.map(\.id) == expected, "cuts(in:): average \(average), pieces up to \(maxPiece), \(implementation)")
                }
            }
        }
    }

    @Test func rejectsBadAverages() {
        for bad in [0, 100, 255, 3000, 8 << 20] {
            #expect(throws: ChunkerError.self) { _ = try Chunker(averageSize: bad) }
        }
    }
}

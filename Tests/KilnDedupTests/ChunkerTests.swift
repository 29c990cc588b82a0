import KilnTestSupport
import KilnDedup
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

    @Test func rejectsBadAverages() {
        for bad in [0, 100, 255, 3000, 8 << 20] {
            #expect(throws: ChunkerError.self) { _ = try Chunker(averageSize: bad) }
        }
    }
}

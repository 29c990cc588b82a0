import KilnTestSupport
import KilnDedup
import Testing

/// One direction of one flow through encoder → payloads → decoder, answering the decoder's requests from the
/// encoder as the peer channel does. Writes are cut at the given sizes; every `flushEvery`-th write flushes.
struct Link {
    var encoder: DedupEncoder
    var decoder: DedupDecoder
    var wanBytes = 0
    var requests = 0

    mutating func send(_ data: [UInt8], writes: [Int], flushEvery: Int = 0) throws(CodecError) -> [UInt8] {
        var output: [UInt8] = []
        var offset = 0, n = 0
        while offset < data.count {
            let end = min(data.count, offset + writes[n % writes.count])
            n += 1
            var payloads: [[UInt8]] = []
            let flush = flushEvery > 0 && n % flushEvery == 0
            data.withUnsafeBytes { encoder.encode(UnsafeRawBufferPointer(rebasing: $0[offset..<end]), flush: flush, into: &payloads) }
            offset = end
            try deliver(payloads, &output)
        }
        var last: [[UInt8]] = []
        encoder.finish(into: &last)
        try deliver(last, &output)
        return output
    }

    mutating func deliver(_ payloads: [[UInt8]], _ output: inout [UInt8]) throws(CodecError) {
        for p in payloads {
            #expect(p.count <= encoder.maxPayload)
            wanBytes += p.count
            var missing = try decoder.decode(p, into: &output)
            while let id = missing.popLast() {
                requests += 1
                guard let answer = encoder.supply(id) else { throw CodecError("sender lost \(id)") }
                wanBytes += answer.count + 32 // the request carries the id back
                missing += try decoder.decode(answer, into: &output)
            }
        }
    }
}

func link(_ a: ChunkStore, _ b: ChunkStore) throws -> Link {
    Link(encoder: try DedupEncoder(store: a), decoder: DedupDecoder(store: b))
}

/// 1% of `data` overwritten or inserted in `count` places.
func edited(_ data: [UInt8], places count: Int, seed: UInt64) -> [UInt8] {
    var rng = SplitMix(state: seed)
    var out = data
    let each = data.count / 100 / count
    for _ in 0..<count {
        let at = Int.random(in: 0..<(out.count - each), using: &rng)
        let patch = randomBytes(each, seed: rng.next())
        if Bool.random(using: &rng) { out.replaceSubrange(at..<(at + each), with: patch) } else { out.insert(contentsOf: patch, at: at) }
    }
    return out
}

@Suite struct CodecTests {
    let corpus = textBytes(3 << 20, seed: 100) + randomBytes(1 << 20, seed: 101) + textBytes(1 << 20, seed: 102)

    @Test func roundTripAndResend() throws {
        let dirA = TempDir("codec-a"), dirB = TempDir("codec-b")
        var l = try link(try ChunkStore(directory: dirA.path, capacity: 64 << 20), try ChunkStore(directory: dirB.path, capacity: 64 << 20))
        let first = try l.send(corpus, writes: [1460, 65536, 7, 100_000], flushEvery: 5)
        #expect(ChunkID(hashing: first) == ChunkID(hashing: corpus))
        let firstWAN = l.wanBytes
        // zstd makes the text smaller; the random megabyte goes raw.
        #expect(firstWAN < corpus.count * 7 / 10 && firstWAN > (1 << 20))
        l.wanBytes = 0
        let second = try l.send(corpus, writes: [16384])
        #expect(second == corpus)
        #expect(l.wanBytes * 100 < corpus.count, "\(l.wanBytes) bytes for an unchanged resend")
        #expect(l.requests == 0)
        l.wanBytes = 0
        let changed = edited(corpus, places: 20, seed: 7)
        let third = try l.send(changed, writes: [1 << 20])
        #expect(third == changed)
        #expect(l.wanBytes * 100 < corpus.count * 5, "\(l.wanBytes) bytes for a 1% edit")
        #expect(l.encoder.statistics.referencedChunks > 0)
        // Edited chunks go as deltas against their old versions, and the receiver rebuilds them.
        #expect(l.encoder.statistics.deltaChunks > 0)
        #expect(l.decoder.statistics.deltaChunks == l.encoder.statistics.deltaChunks)
        #expect(l.decoder.statistics.bytesOut == corpus.count * 2 + changed.count)
    }

    @Test func receiverThatLostItsStoreAsksAndRecovers() throws {
        let dirA = TempDir("lost-a"), dirB = TempDir("lost-b"), dirB2 = TempDir("lost-b2")
        let storeA = try ChunkStore(directory: dirA.path, capacity: 64 << 20)
        var l = try link(storeA, try ChunkStore(directory: dirB.path, capacity: 64 << 20))
        #expect(try l.send(corpus, writes: [65536]) == corpus)
        // B restarts with an empty store: every reference misses and is supplied, the bytes still arrive intact.
        // A new flow, as after a restart; A's store still holds everything.
        l = try link(storeA, try ChunkStore(directory: dirB2.path, capacity: 64 << 20))
        l.wanBytes = 0
        let changed = edited(corpus, places: 10, seed: 8)
        let out = try l.send(changed, writes: [3000, 70000])
        #expect(out == changed)
        #expect(l.requests > 100)
        // Deltas whose bases B lost were held until the bases arrived.
        #expect(l.encoder.statistics.deltaChunks > 0)
        #expect(l.decoder.statistics.deltaChunks == l.encoder.statistics.deltaChunks)
        #expect(l.decoder.statistics.suppliedChunks == l.requests)
        #expect(!l.decoder.isStalled)
        // Now B holds them again: a resend needs no requests.
        l.requests = 0
        #expect(try l.send(changed, writes: [65536]) == changed)
        #expect(l.requests == 0)
    }

    @Test func storesSurviveARestartOfBothSides() throws {
        let dirA = TempDir("restart-a"), dirB = TempDir("restart-b")
        do {
            var l = try link(try ChunkStore(directory: dirA.path, capacity: 64 << 20), try ChunkStore(directory: dirB.path, capacity: 64 << 20))
            #expect(try l.send(corpus, writes: [65536]) == corpus)
        }
        // Both services restarted: the stores are reopened from their segment files.
        var l = try link(try ChunkStore(directory: dirA.path, capacity: 64 << 20), try ChunkStore(directory: dirB.path, capacity: 64 << 20))
        #expect(try l.send(corpus, writes: [65536]) == corpus)
        #expect(l.requests == 0)
        #expect(l.wanBytes * 100 < corpus.count)
    }

    @Test func outputStallsBehindAMissingChunk() throws {
        let dirA = TempDir("stall-a"), dirB = TempDir("stall-b")
        let storeA = try ChunkStore(directory: dirA.path, capacity: 64 << 20)
        let known = textBytes(100_000, seed: 9)
        var warm = try DedupEncoder(store: storeA)
        var sink: [[UInt8]] = []
        known.withUnsafeBytes { warm.encode($0, flush: true, into: &sink) }
        // A knows every chunk of `known`, B none; the stream is known + fresh bytes.
        var encoder = try DedupEncoder(store: storeA)
        var decoder = DedupDecoder(store: try ChunkStore(directory: dirB.path, capacity: 64 << 20))
        let fresh = randomBytes(50_000, seed: 10)
        let stream = known + fresh
        var payloads: [[UInt8]] = []
        stream.withUnsafeBytes { encoder.encode($0, flush: true, into: &payloads) }
        var output: [UInt8] = []
        var missing: [ChunkID] = []
        for p in payloads { missing += try decoder.decode(p, into: &output) }
        #expect(output.isEmpty)
        #expect(decoder.isStalled)
        #expect(missing.count >= 5)
        for (i, id) in missing.enumerated() {
            let supplied = encoder.supply(id)
            let answer = try #require(supplied)
            #expect(try decoder.decode(answer, into: &output).isEmpty)
            // Output grows only by whole prefixes of the stream.
            #expect(Array(stream.prefix(output.count)) == output)
            #expect(decoder.isStalled == (i < missing.count - 1))
        }
        #expect(output == stream)
    }

    @Test func senderThatLostTheChunkCannotSupply() throws {
        let dirA = TempDir("gone-a")
        var encoder = try DedupEncoder(store: try ChunkStore(directory: dirA.path, capacity: 64 << 20))
        #expect(encoder.supply(ChunkID(hashing: [9, 9, 9])) == nil)
        #expect(encoder.statistics.supplyFailures == 1)
    }

    @Test func hostilePayloadsThrow() throws {
        let dirA = TempDir("bad-a"), dirB = TempDir("bad-b")
        let storeB = try ChunkStore(directory: dirB.path, capacity: 64 << 20)
        var encoder = try DedupEncoder(store: try ChunkStore(directory: dirA.path, capacity: 64 << 20))
        let data = textBytes(30_000, seed: 11)
        var payloads: [[UInt8]] = []
        data.withUnsafeBytes { encoder.encode($0, flush: true, into: &payloads) }
        let good = payloads[0]
        func decode(_ p: [UInt8]) throws(CodecError) -> [UInt8] {
            var d = DedupDecoder(store: storeB)
            var out: [UInt8] = []
            _ = try d.decode(p, into: &out)
            return out
        }
        #expect(try decode(good) == Array(data.prefix(try decode(good).count)))
        // An end record whose id does not match the bytes: the flow fails.
        let bytes: [UInt8] = Array("some bytes".utf8)
        var forged = [Frame.RecordType.literal.rawValue, UInt8(bytes.count), 0, 0, 0] + bytes
        #expect(try decode(forged + [Frame.RecordType.end.rawValue] + ChunkID(hashing: bytes).digest) == bytes)
        #expect(throws: CodecError.self) { _ = try decode(forged + [Frame.RecordType.end.rawValue] + ChunkID(hashing: [1]).digest) }
        // Truncations anywhere: an error or a prefix of the data, never other bytes.
        for cut in stride(from: 1, to: good.count, by: 97) {
            do { let out = try decode(Array(good.prefix(cut))); #expect(out == Array(data.prefix(out.count))) } catch {}
        }
        forged = [Frame.RecordType.reference.rawValue] + [UInt8](repeating: 0, count: 31)
        #expect(throws: CodecError.self) { _ = try decode(forged) }
        // A supply nobody asked for.
        let chunk = textBytes(5000, seed: 12)
        var supply: [UInt8] = [Frame.RecordType.supply.rawValue] + ChunkID(hashing: chunk).digest + [0x88, 0x13, 0, 0] + chunk
        #expect(throws: CodecError.self) { _ = try decode(supply) }
        // A reference inside an unfinished chunk.
        supply = [Frame.RecordType.literal.rawValue, 3, 0, 0, 0, 1, 2, 3, Frame.RecordType.reference.rawValue] + ChunkID(hashing: chunk).digest
        #expect(throws: CodecError.self) { _ = try decode(supply) }
        #expect(throws: CodecError.self) { _ = try decode([]) }
        #expect(throws: CodecError.self) { _ = try decode([7]) }
        #expect(throws: CodecError.self) { _ = try decode([Frame.RecordType.literal.rawValue, 0, 0, 0, 0]) }
    }

    /// A peer that keeps referring to chunks nobody has fails its flow once the held-back queue is full.
    @Test func heldBackQueueIsBounded() throws {
        let dir = TempDir("held")
        var decoder = DedupDecoder(store: try ChunkStore(directory: dir.path, capacity: 1 << 20), maxHeldBytes: 1 << 20)
        var output: [UInt8] = []
        var failed = false, asked = 0
        for i in 0..<100 {
            var payload: [UInt8] = []
            for j in 0..<50 { payload += [Frame.RecordType.reference.rawValue] + ChunkID(hashing: [UInt8(i), UInt8(j)]).digest }
            do { asked += try decoder.decode(payload, into: &output).count } catch { failed = true; break }
        }
        #expect(failed)
        #expect(asked >= 1000 && asked < 5000)
        #expect(output.isEmpty)
    }

    @Test func payloadLimitMustHoldAChunk() {
        #expect(DedupEncoder.minimumPayload(averageChunkSize: 8192) <= 65535)
        let dir = TempDir("limit")
        #expect(throws: CodecError.self) {
            _ = try DedupEncoder(store: try ChunkStore(directory: dir.path, capacity: 1 << 20), maxPayload: 16384)
        }
    }
}

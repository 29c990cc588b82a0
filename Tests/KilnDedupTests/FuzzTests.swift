import KilnTestSupport
import Glibc
import KilnDedup
import Testing

@Suite struct FuzzTests {
    /// 1,000,000 payloads (release; 100,000 in debug) into the decoder (parser, zstd, hash checks, store lookups): random bytes with plausible
    /// record types and lengths, and one- or multi-byte mutations, truncations and extensions of valid payloads.
    /// Nothing crashes; every payload either throws (delivering nothing) or delivers only bytes of the real
    /// stream, in order: hostile input may stall or fail a flow, never change its bytes.
    @Test func decoderSurvivesHostilePayloads() throws {
        let dirA = TempDir("fuzz-a"), dirB = TempDir("fuzz-b")
        let storeA = try ChunkStore(directory: dirA.path, capacity: 64 << 20)
        let storeB = try ChunkStore(directory: dirB.path, capacity: 64 << 20)
        // Small chunks keep payloads small, so a million of them run quickly.
        let stream = textBytes(24_000, seed: 200) + randomBytes(8_000, seed: 201) + textBytes(8_000, seed: 202)
        var encoder = try DedupEncoder(store: storeA, averageChunkSize: 256, maxPayload: 2048)
        var valid: [[UInt8]] = []
        encoder.encode(stream, flush: false, into: &valid)
        encoder.finish(into: &valid)
        // B learns every chunk, then a second pass gives reference payloads.
        var warm = DedupDecoder(store: storeB)
        var out: [UInt8] = []
        for p in valid { _ = try warm.decode(p, into: &out) }
        #expect(out == stream)
        var second: [[UInt8]] = []
        encoder.encode(stream, flush: false, into: &second)
        encoder.finish(into: &second)
        // An edited pass gives delta records (new chunks compressed against their old versions).
        var edited = stream
        for at in stride(from: 500, to: edited.count, by: 3000) { edited[at] ^= 0x55 }
        encoder.encode(edited, flush: false, into: &second)
        encoder.finish(into: &second)
        #expect(encoder.statistics.deltaChunks > 0)
        let withReferences = second.filter { $0.contains(Frame.RecordType.reference.rawValue) }
        #expect(!withReferences.isEmpty)
        let ids = Set(try valid.flatMap { p in try p.withUnsafeBytes { try Frame.parse($0, maxChunkSize: 1 << 20) } }
            .compactMap { r -> ChunkID? in if case .end(let id) = r { return id } else { return nil } })
        let supplies = ids.prefix(20).compactMap { encoder.supply($0) }
        let corpus = valid + withReferences + supplies
        #expect(corpus.allSatisfy { $0.count <= 2048 + Frame.maxHeader })

        // Two starting states, copied for every input so nothing leaks between inputs but the stores (which
        // only ever take chunks whose hash checked out): one that holds every chunk, and one whose store is
        // empty and that has asked for every chunk of the reference payloads (so supplies are expected).
        let fresh = DedupDecoder(store: storeB, maxChunkSize: 4096)
        let dirC = TempDir("fuzz-c")
        var asking = DedupDecoder(store: try ChunkStore(directory: dirC.path, capacity: 64 << 20), maxChunkSize: 4096)
        var held: [UInt8] = []
        var asked = 0
        for p in withReferences { asked += try asking.decode(p, into: &held).count }
        #expect(asking.isStalled && asked > 10)
        let index = Substrings(stream), editedIndex = Substrings(edited)
        var rng = SplitMix(state: 0x4B49_4C4E_4444)
        // 1,000,000 in a release build (Benchmarks/dedup/fuzz.sh, about a minute); the debug suite runs 100,000.
        #if DEBUG
        let defaultTotal = 100_000
        #else
        let defaultTotal = 1_000_000
        #endif
        let total = getenv("KILN_DEDUP_FUZZ_ITERATIONS").flatMap { Int(String(cString: $0)) } ?? defaultTotal
        var buffer = [UInt8](repeating: 0, count: 4096)
        var rejected = 0, accepted = 0, stalled = 0
        for i in 0..<total {
            var length: Int
            if i % 3 == 0 {
                let sizes = [0, 1, 5, 6, 9, 10, 33, 34, 37, 41, 42, 100, 1000, 4096]
                length = Bool.random(using: &rng) ? sizes.randomElement(using: &rng)! : Int.random(in: 0...4096, using: &rng)
                for j in 0..<length { buffer[j] = UInt8.random(in: 0...255, using: &rng) }
                if length > 0, Bool.random(using: &rng) { buffer[0] = UInt8.random(in: 0...7, using: &rng) }
                if length > 8, Bool.random(using: &rng) {
                    let n = UInt32.random(in: 0...UInt32(length), using: &rng)
                    for k in 0..<4 { buffer[1 + k] = UInt8(truncatingIfNeeded: n >> (8 * UInt32(k))) }
                }
            } else {
                let base = corpus.randomElement(using: &rng)!
                length = base.count
                buffer.replaceSubrange(0..<length, with: base)
                switch Int.random(in: 0..<5, using: &rng) {
                case 0: buffer[Int.random(in: 0..<length, using: &rng)] ^= UInt8.random(in: 1...255, using: &rng)
                case 1:
                    for _ in 0..<Int.random(in: 2...8, using: &rng) {
                        buffer[Int.random(in: 0..<length, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                    }
                case 2: length = Int.random(in: 0..<length, using: &rng)
                case 3:
                    let extra = Int.random(in: 1...min(64, 4096 - length), using: &rng)
                    for j in length..<(length + extra) { buffer[j] = UInt8.random(in: 0...255, using: &rng) }
                    length += extra
                default: break // unchanged
                }
            }
            var decoder = i % 4 == 1 ? asking : fresh
            var output: [UInt8] = []
            do {
                _ = try buffer.withUnsafeBytes { try decoder.decode(UnsafeRawBufferPointer(rebasing: $0[0..<length]), into: &output) }
                accepted += 1
                if decoder.isStalled { stalled += 1 }
                // Whatever came out is a run of the stream's bytes, except literal bytes after the payload's last
                // chunk end: those belong to a chunk still in progress and are delivered as sent (a flush).
                let checked = output.count - unverifiedTail(buffer, length)
                if checked > 0 {
                    let genuine = index.contains(output[..<checked]) || editedIndex.contains(output[..<checked])
                    #expect(genuine, "input \(i): \(checked) delivered bytes are not from the stream")
                }
            } catch {
                rejected += 1
                #expect(output.isEmpty)
            }
        }
        print("dedup fuzz: \(total) payloads, \(rejected) rejected, \(accepted) accepted (\(stalled) stalled on a missing chunk)")
        #expect(rejected + accepted == total)
        #expect(rejected > total / 2)
        // The store was not changed by any of it: every chunk still reads back.
        for id in ids { #expect(storeB.read(id) != nil) }
    }
}

/// Finds runs of a byte string by their first 8 bytes.
struct Substrings {
    let haystack: [UInt8]
    var starts: [UInt64: [Int]] = [:]
    init(_ haystack: [UInt8]) {
        self.haystack = haystack
        for i in 0..<(haystack.count - 7) { starts[Substrings.key(haystack[i..<(i + 8)]), default: []].append(i) }
    }
    static func key(_ b: ArraySlice<UInt8>) -> UInt64 { b.prefix(8).reduce(0) { $0 << 8 | UInt64($1) } }
    func contains(_ needle: ArraySlice<UInt8>) -> Bool {
        guard needle.count >= 8 else {
            return (0...(haystack.count - needle.count)).contains { haystack[$0..<($0 + needle.count)].elementsEqual(needle) }
        }
        return (starts[Substrings.key(needle)] ?? []).contains { i in
            i + needle.count <= haystack.count && haystack[i..<(i + needle.count)].elementsEqual(needle)
        }
    }
}

/// Stream bytes of the literal records after the payload's last end, reference or supply record.
func unverifiedTail(_ buffer: [UInt8], _ length: Int) -> Int {
    guard let records = try? buffer.withUnsafeBytes({ try Frame.parse(UnsafeRawBufferPointer(rebasing: $0[0..<length]), maxChunkSize: 4096) })
    else { return 0 }
    var tail = 0
    for r in records {
        switch r {
        case .literal(let range): tail += range.count
        case .literalZstd(let n, _): tail += n
        default: tail = 0
        }
    }
    return tail
}

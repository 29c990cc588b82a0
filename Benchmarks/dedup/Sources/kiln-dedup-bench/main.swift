// kiln-dedup-bench: the data-reduction half of the WAN optimizer benchmark (Benchmarks/dedup/run.sh).
//
//   kiln-dedup-bench edit IN OUT [FRACTION] [MEAN_EDIT] [SEED]   writes IN with FRACTION of its bytes edited
//   kiln-dedup-bench send STOREDIR FILE...                       sends each file as one flow through an encoder
//                                                                and decoder with persistent stores; prints bytes
//   kiln-dedup-bench throughput FILE [GIGABYTES]                 chunking + hashing speed on one core
import Glibc
import KilnDedup
import KilnSystem

func fail(_ message: String) -> Never {
    let line = Array("kiln-dedup-bench: \(message)\n".utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    exit(1)
}

func readAll(_ path: String) -> [UInt8] {
    do { return try FileSystem.readFile(path, limit: 1 << 31) } catch { fail("\(error)") }
}

func cpuSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}

func wallSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}

struct SplitMix {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}

/// Edits at random places until `fraction` of the input's bytes were touched: each edit is `1...2*mean-1` bytes
/// long and overwrites with random bytes (half of them), inserts random bytes or deletes (a quarter each).
func edit(_ input: [UInt8], fraction: Double, meanEdit: Int, seed: UInt64) -> (output: [UInt8], edits: Int) {
    var rng = SplitMix(state: seed)
    var out = input
    var budget = Int(Double(input.count) * fraction)
    var edits = 0
    while budget > 0 {
        let length = min(budget, 1 + rng.below(2 * meanEdit - 1))
        budget -= length
        edits += 1
        let at = rng.below(out.count - length)
        let kind = rng.below(4)
        if kind == 3 {
            out.removeSubrange(at..<(at + length))
        } else {
            let patch = (0..<length).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            if kind == 2 { out.insert(contentsOf: patch, at: at) } else { out.replaceSubrange(at..<(at + length), with: patch) }
        }
    }
    return (out, edits)
}

let args = CommandLine.arguments
guard args.count >= 2 else { fail("usage: edit IN OUT [FRACTION] [MEAN_EDIT] [SEED] | send STOREDIR FILE... | throughput FILE [GB]") }

switch args[1] {
case "edit":
    guard args.count >= 4 else { fail("edit IN OUT [FRACTION] [MEAN_EDIT] [SEED]") }
    let fraction = args.count > 4 ? Double(args[4]) ?? 0.01 : 0.01
    let mean = args.count > 5 ? Int(args[5]) ?? 2048 : 2048
    let seed = args.count > 6 ? UInt64(args[6]) ?? 1 : 1
    let (out, edits) = edit(readAll(args[2]), fraction: fraction, meanEdit: mean, seed: seed)
    do { try FileSystem.writeFile(args[3], out, atomically: true) } catch { fail("\(error)") }
    print("edits \(edits)")

case "send":
    guard args.count >= 4 else { fail("send STOREDIR FILE...") }
    let a: ChunkStore, b: ChunkStore
    do {
        a = try ChunkStore(directory: args[2] + "/a", capacity: 1 << 30)
        b = try ChunkStore(directory: args[2] + "/b", capacity: 1 << 30)
    } catch { fail("\(error)") }
    for file in args[3...] {
        let data = readAll(file)
        var encoder: DedupEncoder
        do { encoder = try DedupEncoder(store: a) } catch { fail("\(error)") }
        var decoder = DedupDecoder(store: b)
        var wan = 0, requests = 0
        var output: [UInt8] = []
        output.reserveCapacity(data.count)
        var payloads: [[UInt8]] = []
        let cpu0 = cpuSeconds()
        func deliver() {
            for p in payloads {
                wan += p.count
                do {
                    var missing = try decoder.decode(p, into: &output)
                    while let id = missing.popLast() {
                        requests += 1
                        guard let answer = encoder.supply(id) else { fail("sender lost chunk \(id)") }
                        wan += answer.count + 32
                        missing += try decoder.decode(answer, into: &output)
                    }
                } catch { fail("\(file): \(error)") }
            }
            payloads.removeAll(keepingCapacity: true)
        }
        // The optimizer reads the client's socket 64 KiB at a time.
        data.withUnsafeBytes { all in
            var offset = 0
            while offset < all.count {
                let end = min(all.count, offset + 65536)
                encoder.encode(UnsafeRawBufferPointer(rebasing: all[offset..<end]), flush: false, into: &payloads)
                offset = end
                deliver()
            }
        }
        encoder.finish(into: &payloads)
        deliver()
        let cpu = cpuSeconds() - cpu0
        guard output == data, ChunkID(hashing: output) == ChunkID(hashing: data) else { fail("\(file): delivered bytes differ") }
        let s = encoder.statistics
        print("send \(file) bytes \(data.count) wan \(wan) chunks \(s.chunks) referenced \(s.referencedChunks) "
            + "new \(s.newChunks) delta \(s.deltaChunks) literal \(s.literalBytes) requests \(requests) cpu \(cpu) sha256 \(ChunkID(hashing: output))")
    }

case "throughput":
    guard args.count >= 3 else { fail("throughput FILE [GB]") }
    let data = readAll(args[2])
    let target = (args.count > 3 ? Double(args[3]) ?? 2 : 2) * 1e9
    let rounds = max(1, Int((target / Double(data.count)).rounded(.up)))
    var chunker: Chunker
    do { chunker = try Chunker() } catch { fail("\(error)") }
    func report(_ label: String, _ c0: Double, _ w0: Double, _ chunks: Int, _ check: UInt64) {
        let cpu = cpuSeconds() - c0, wall = wallSeconds() - w0
        let bytes = Double(data.count * rounds)
        print("throughput \(label) bytes \(Int(bytes)) chunks \(chunks) cpu \(cpu) wall \(wall) gbps_cpu \(bytes / cpu / 1e9) check \(check & 0xff)")
    }
    // What the encoder does: 64 KiB writes, each through cuts(in:), FastCDC with SHA-256 as it scans and a chunk's
    // hash finished while the next chunk is scanned.
    do {
        var hasher = KilnSHA256(), check: UInt64 = 0, chunks = 0
        var cuts: [(end: Int, id: ChunkID)] = []
        let c0 = cpuSeconds(), w0 = wallSeconds()
        data.withUnsafeBytes { all in
            for _ in 0..<rounds {
                var offset = 0
                while offset < all.count {
                    let end = min(all.count, offset + 65536)
                    cuts.removeAll(keepingCapacity: true)
                    chunker.cuts(in: UnsafeRawBufferPointer(rebasing: all[offset..<end]), hashingInto: &hasher, appendingTo: &cuts)
                    for cut in cuts { check ^= cut.id.bytes.0 }
                    chunks += cuts.count
                    offset = end
                }
                check ^= hasher.finalizeAndReset().bytes.0
                chunks += 1
                chunker.reset()
            }
        }
        report("chunk+hash", c0, w0, chunks, check)
    }
    // One chunk per call (nextCut), the hash finished before the next chunk is scanned.
    do {
        var hasher = KilnSHA256(), check: UInt64 = 0, chunks = 0
        let c0 = cpuSeconds(), w0 = wallSeconds()
        data.withUnsafeBytes { all in
            for _ in 0..<rounds {
                var offset = 0
                while offset < all.count {
                    if let n = chunker.nextCut(in: UnsafeRawBufferPointer(rebasing: all[offset...]), hashingInto: &hasher) {
                        offset += n
                    } else {
                        offset = all.count
                    }
                    check ^= hasher.finalizeAndReset().bytes.0
                    chunks += 1
                }
                chunker.reset()
            }
        }
        report("chunk+hash-nextcut", c0, w0, chunks, check)
    }
    func measure(_ label: String, hash: Bool, cut: Bool) {
        var check: UInt64 = 0, chunks = 0
        let c0 = cpuSeconds(), w0 = wallSeconds()
        data.withUnsafeBytes { all in
            for _ in 0..<rounds {
                var offset = 0
                while offset < all.count {
                    var end = all.count
                    if cut {
                        if let n = chunker.nextCut(in: UnsafeRawBufferPointer(rebasing: all[offset...])) { end = offset + n }
                    } else {
                        end = min(all.count, offset + 8192)
                    }
                    if hash { check ^= ChunkID(hashing: UnsafeRawBufferPointer(rebasing: all[offset..<end])).bytes.0 }
                    chunks += 1
                    offset = end
                }
                chunker.reset()
            }
        }
        report(label, c0, w0, chunks, check)
    }
    measure("chunk-then-hash", hash: true, cut: true)
    measure("chunk", hash: false, cut: true)
    measure("hash", hash: true, cut: false)

default:
    fail("unknown command \(args[1])")
}

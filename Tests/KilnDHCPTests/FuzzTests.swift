import Glibc
import KilnConfig
import Testing
@testable import KilnDHCP

/// xorshift64*: fast, deterministic, seedable.
struct FuzzRNG {
    var state: UInt64
    mutating func next() -> UInt64 {
        state ^= state >> 12; state ^= state << 25; state ^= state >> 27
        return state &* 0x2545_F491_4F6C_DD1D
    }
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(max(n, 1))) }
    mutating func byte() -> UInt8 { UInt8(truncatingIfNeeded: next()) }
}

/// Valid messages of every type, plus the real udhcpc capture and an overloaded packet, as mutation seeds.
func fuzzSeeds() -> [[UInt8]] {
    let server = v4("10.10.0.1")
    var seeds = [udhcpcDiscover, DHCPCodec.serialize(sampleAck())]
    for i in 0..<4 {
        let mac = macN(i)
        seeds.append(DHCPCodec.serialize(clientPacket(.discover, mac: mac, requested: v4("10.10.0.10\(i)"))))
        seeds.append(DHCPCodec.serialize(clientPacket(.request, mac: mac, requested: v4("10.10.0.10\(i)"), server: server)))
        seeds.append(DHCPCodec.serialize(clientPacket(.request, mac: mac, requested: v4("10.10.0.10\(i)"))))
        seeds.append(DHCPCodec.serialize(clientPacket(.request, mac: mac, ciaddr: v4("10.10.0.10\(i)"), broadcast: true)))
        seeds.append(DHCPCodec.serialize(clientPacket(.release, mac: mac, server: server, ciaddr: v4("10.10.0.10\(i)"))))
        seeds.append(DHCPCodec.serialize(clientPacket(.decline, mac: mac, requested: v4("10.10.0.10\(i)"), server: server)))
        seeds.append(DHCPCodec.serialize(clientPacket(.inform, mac: mac, ciaddr: v4("10.10.0.3\(i)"))))
    }
    var static1 = clientPacket(.discover, mac: (try? MACAddress("52:54:00:aa:00:01")) ?? macN(0))
    static1.clientIdentifier = [0xff, 0, 1]
    seeds.append(DHCPCodec.serialize(static1))
    var overload = [UInt8](repeating: 0, count: 240)
    overload[0] = 1; overload[1] = 1; overload[2] = 6; overload[33] = 2
    overload[236..<240] = [99, 130, 83, 99]
    overload += [52, 1, 3, 53, 1, 3, 255]
    overload[108..<114] = [50, 4, 10, 10, 0, 105][...]
    overload[44..<50] = [54, 4, 10, 10, 0, 1][...]
    seeds.append(overload)
    return seeds
}

/// Mutates a seed: byte flips, option-length corruption, truncation, insertion, deletion, splicing.
func mutate(_ seed: [UInt8], _ rng: inout FuzzRNG, seeds: [[UInt8]]) -> [UInt8] {
    var b = seed
    for _ in 0..<(1 + rng.below(4)) {
        switch rng.below(8) {
        case 0, 1: if !b.isEmpty { b[rng.below(b.count)] = rng.byte() }
        case 2: if b.count > 240 { b[240 + rng.below(b.count - 240)] = rng.byte() }        // inside options
        case 3: b = Array(b.prefix(rng.below(b.count + 1)))
        case 4: let at = rng.below(b.count + 1); b.insert(contentsOf: (0..<rng.below(40)).map { _ in rng.byte() }, at: at)
        case 5: if !b.isEmpty { let at = rng.below(b.count); b.removeSubrange(at..<min(b.count, at + rng.below(40))) }
        case 6: let other = seeds[rng.below(seeds.count)]; let cut = rng.below(min(b.count, other.count) + 1); b = Array(b.prefix(cut)) + other.dropFirst(cut)
        default: if b.count > 33 { b[28 + 5] = UInt8(rng.below(8)) }                      // few distinct MACs: collisions
        }
    }
    return b
}

/// 1,000,000 inputs (about a minute in the debug suite here), unless KILN_DHCP_FUZZ_ITERATIONS says otherwise.
/// Properties: parse never traps; what parses re-encodes and parses again; fed to the engine, the lease table
/// keeps its invariants (one client per address, all in pool/static).
@Test func fuzzParserAndEngine() throws {
    var iterations = 1_000_000
    if let env = getenv("KILN_DHCP_FUZZ_ITERATIONS"), let n = Int(String(cString: env)) { iterations = n }
    let seeds = fuzzSeeds()
    var rng = FuzzRNG(state: 0x9E37_79B9_7F4A_7C15)
    var engine = try DHCPServerEngine(config: testInterface())
    var parsed = 0, replies = 0, now: Int64 = 1_000_000
    let start = clock()
    for i in 0..<iterations {
        let input: [UInt8]
        if rng.below(4) == 0 {
            var random = (0..<rng.below(600)).map { _ in rng.byte() }
            if random.count >= 240, rng.below(2) == 0 { random[0] = 1; random[1] = 1; random[2] = 6; random[236..<240] = [99, 130, 83, 99][...] }
            input = random
        } else {
            input = mutate(seeds[rng.below(seeds.count)], &rng, seeds: seeds)
        }
        guard let packet = try? DHCPCodec.parse(input) else { continue }
        parsed += 1
        let again = DHCPCodec.serialize(packet)
        #expect(throws: Never.self) { _ = try DHCPCodec.parse(again) }
        if rng.below(64) == 0 { now += Int64(rng.below(700)) }
        if let r = engine.handle(packet, now: now) {
            replies += 1
            _ = DHCPCodec.serialize(r.packet)
        }
        if i % 256 == 0 { engine.tick(now: now) }
        if i % 64 == 0 {
            let broken = engine.table.invariantViolations()
            try #require(broken.isEmpty, "after input \(i): \(broken)")
        }
    }
    #expect(engine.table.invariantViolations().isEmpty)
    let seconds = Double(clock() - start) / Double(CLOCKS_PER_SEC)
    print("dhcp fuzz: \(iterations) inputs, \(parsed) parsed, \(replies) replies, \(seconds) s CPU")
    #expect(parsed > iterations / 10 && replies > 0)
}

import KilnTestSupport
import Testing
@testable import KilnVPN

@Suite struct FuzzTests {
    /// 1,000,000 inputs: random bytes of every length class and single/multi-byte mutations, truncations and
    /// extensions of valid messages. Each must be rejected and counted exactly once; nothing crashes.
    @Test func parserAndEngineRejectMalformedInput() {
        let pair = Pair()
        let initiation = pair.handshake()
        let (_, transport) = pair.seal(pair.a, from: [10, 0, 0, 1], to: [10, 0, 0, 2], payload: 60)
        #expect(pair.deliver(transport, to: pair.b, from: pair.aEndpoint).0 == .packet(peer: 0, length: 80))
        let (_, keepalive) = pair.seal(pair.a, from: [10, 0, 0, 1], to: [10, 0, 0, 2], payload: 0)
        #expect(pair.deliver(keepalive, to: pair.b, from: pair.aEndpoint).0 == .packet(peer: 0, length: 20))
        let response = [2, 0, 0, 0] + [UInt8](repeating: 0x11, count: 88)
        let cookie = [3, 0, 0, 0] + [UInt8](repeating: 0x22, count: 60)
        let valid = [initiation, transport, keepalive, response, cookie]

        var rng = SplitMix(state: 0x4B49_4C4E)
        let engine = pair.b
        let total = 1_000_000
        var before = engine.totalDrops
        var buffer = [UInt8](repeating: 0, count: 2048)
        var accepted = 0
        for i in 0..<total {
            var length: Int
            if i % 2 == 0 {
                // Random: a plausible type byte half the time, lengths around the message sizes.
                let sizes = [0, 1, 3, 4, 31, 32, 33, 47, 48, 63, 64, 65, 91, 92, 93, 147, 148, 149, 1500, 2048]
                length = Int.random(in: 0...1, using: &rng) == 0 ? sizes.randomElement(using: &rng)! : Int.random(in: 0...2048, using: &rng)
                for j in 0..<length { buffer[j] = UInt8.random(in: 0...255, using: &rng) }
                if length > 3, Bool.random(using: &rng) {
                    buffer[0] = UInt8.random(in: 1...4, using: &rng); buffer[1] = 0; buffer[2] = 0; buffer[3] = 0
                }
            } else {
                let base = valid.randomElement(using: &rng)!
                length = base.count
                buffer.replaceSubrange(0..<length, with: base)
                switch Int.random(in: 0..<4, using: &rng) {
                case 0: buffer[Int.random(in: 0..<length, using: &rng)] ^= UInt8.random(in: 1...255, using: &rng)
                case 1:
                    for _ in 0..<Int.random(in: 2...8, using: &rng) { buffer[Int.random(in: 0..<length, using: &rng)] = UInt8.random(in: 0...255, using: &rng) }
                case 2: length = Int.random(in: 0..<length, using: &rng)
                default:
                    let extra = Int.random(in: 1...64, using: &rng)
                    for j in length..<(length + extra) { buffer[j] = UInt8.random(in: 0...255, using: &rng) }
                    length += extra
                    // Unchanged prefixes of a valid message are replays, the rest fail length or authentication.
                }
            }
            let result = buffer.withUnsafeMutableBytes { engine.receive($0, length: length, from: pair.aEndpoint, now: pair.now) }
            let after = engine.totalDrops
            if case .dropped = result, after == before + 1 {} else { accepted += 1 }
            before = after
        }
        #expect(accepted == 0)
        #expect(engine.totalDrops >= UInt64(total))
        // The session survived the storm.
        let (_, m) = pair.seal(pair.a, from: [10, 0, 0, 1], to: [10, 0, 0, 2])
        #expect(pair.deliver(m, to: pair.b, from: pair.aEndpoint).0 == .packet(peer: 0, length: 40))
    }
}

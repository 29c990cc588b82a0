import KilnTestSupport
import Testing
@testable import KilnVPN

/// Two engines that talk through arrays, with a clock the test moves.
final class Pair {
    var now: UInt64 = 1_000_000_000
    var wall: UInt64 = 1_700_000_000
    let a: ProtocolEngine
    let b: ProtocolEngine
    let aEndpoint = Endpoint(address: [10, 9, 0, 1], port: 51820)
    let bEndpoint = Endpoint(address: [10, 9, 0, 2], port: 51821)

    init(pskA: [UInt8]? = nil, pskB: [UInt8]? = nil) {
        var clockA: (() -> (UInt64, UInt32))!
        let keyA = X25519.keypair(), keyB = X25519.keypair()
        a = ProtocolEngine(privateKey: keyA.privateKey, wallClock: { clockA() })
        b = ProtocolEngine(privateKey: keyB.privateKey, wallClock: { clockA() })
        clockA = { [unowned self] in (self.wall, UInt32(self.now % 1_000_000_000)) }
        a.addPeer(publicKey: keyB.publicKey, presharedKey: pskA, endpoint: bEndpoint, allowedIPs: [([10, 0, 0, 2], 32), ([0xfd] + [UInt8](repeating: 0, count: 14) + [2], 128)])
        b.addPeer(publicKey: keyA.publicKey, presharedKey: pskB, endpoint: nil, allowedIPs: [([10, 0, 0, 1], 32)])
    }

    /// Delivers `message` to `engine` from `source`.
    func deliver(_ message: [UInt8], to engine: ProtocolEngine, from source: Endpoint, underLoad: Bool = false) -> (ReceiveResult, [UInt8]) {
        var buffer = message
        let result = buffer.withUnsafeMutableBytes { engine.receive($0, length: message.count, from: source, now: now, underLoad: underLoad) }
        return (result, buffer)
    }

    /// Runs a full handshake initiated by a; returns the initiation for replay tests.
    @discardableResult
    func handshake() -> [UInt8] {
        let initiation = a.createInitiation(peer: 0, now: now)!
        #expect(initiation.count == 148)
        let (r1, _) = deliver(initiation, to: b, from: aEndpoint)
        guard case .reply(let response) = r1 else { Issue.record("initiation: \(r1)"); return [] }
        #expect(response.count == 92)
        let (r2, _) = deliver(response, to: a, from: bEndpoint)
        guard case .reply(let keepalive) = r2 else { Issue.record("response: \(r2)"); return [] }
        #expect(keepalive.count == 32)
        let (r3, _) = deliver(keepalive, to: b, from: aEndpoint)
        #expect(r3 == .keepalive(peer: 0))
        return initiation
    }

    /// Encrypts an IPv4 packet from `source` to `destination` on `engine`.
    func seal(_ engine: ProtocolEngine, from source: [UInt8], to destination: [UInt8], payload: Int = 20) -> (SendResult, [UInt8]) {
        let length = 20 + payload
        var buffer = [UInt8](repeating: 0, count: 16 + length + 32)
        buffer[16] = 0x45
        buffer[18] = UInt8(length >> 8); buffer[19] = UInt8(length & 0xFF)
        buffer[16 + 9] = 17
        buffer.replaceSubrange(28..<32, with: source)
        buffer.replaceSubrange(32..<36, with: destination)
        for i in 0..<payload { buffer[36 + i] = UInt8(i & 0xFF) }
        let result = buffer.withUnsafeMutableBytes { engine.send($0, length: length, now: now) }
        if case .send(_, let n, _) = result { return (result, Array(buffer.prefix(n))) }
        return (result, [])
    }
}

@Suite struct ProtocolTests {
    @Test func handshakeAndTransportBothWays() {
        let pair = Pair()
        pair.handshake()
        let (s1, m1) = pair.seal(pair.a, from: [10, 0, 0, 1], to: [10, 0, 0, 2], payload: 21)
        #expect(s1 == .send(peer: 0, length: 16 + 48 + 16, endpoint: pair.bEndpoint))
        let (r1, plain) = pair.deliver(m1, to: pair.b, from: pair.aEndpoint)
        #expect(r1 == .packet(peer: 0, length: 41))
        #expect(Array(plain[36..<57]) == (0..<21).map { UInt8($0) })
        // b learned a's endpoint from the handshake and answers.
        let (s2, m2) = pair.seal(pair.b, from: [10, 0, 0, 2], to: [10, 0, 0, 1])
        #expect(s2 == .send(peer: 0, length: 16 + 48 + 16, endpoint: pair.aEndpoint))
        #expect(pair.deliver(m2, to: pair.a, from: pair.bEndpoint).0 == .packet(peer: 0, length: 40))
        // Replays are refused after authentication.
        #expect(pair.deliver(m2, to: pair.a, from: pair.bEndpoint).0 == .dropped(.replayed))
        #expect(pair.a.drops[DropReason.replayed.rawValue] == 1)
        // A spoofed inner source (not in b's allowed IPs on a) is dropped.
        let (_, m3) = pair.seal(pair.b, from: [10, 0, 0, 7], to: [10, 0, 0, 1])
        #expect(pair.deliver(m3, to: pair.a, from: pair.bEndpoint).0 == .dropped(.sourceNotAllowed))
        // No route for an address outside every peer's allowed IPs.
        #expect(pair.seal(pair.a, from: [10, 0, 0, 1], to: [192, 168, 1, 1]).0 == .noRoute)
    }

    @Test func presharedKeyMustMatch() {
        let psk = randomBytes(32)
        let good = Pair(pskA: psk, pskB: psk)
        good.handshake()
        #expect(good.a.peers[0].current != nil)
        let bad = Pair(pskA: psk, pskB: nil)
        let initiation = bad.a.createInitiation(peer: 0, now: bad.now)!
        guard case .reply(let response) = bad.deliver(initiation, to: bad.b, from: bad.aEndpoint).0 else { Issue.record("no response"); return }
        #expect(bad.deliver(response, to: bad.a, from: bad.bEndpoint).0 == .dropped(.decryptFailed))
    }

    @Test func replayedInitiationAndRoaming() {
        let pair = Pair()
        let initiation = pair.handshake()
        #expect(pair.deliver(initiation, to: pair.b, from: pair.aEndpoint).0 == .dropped(.staleTimestamp))
        // a moves: b follows the source of authenticated data.
        let roamed = Endpoint(address: [192, 0, 2, 9], port: 4000)
        let (_, m) = pair.seal(pair.a, from: [10, 0, 0, 1], to: [10, 0, 0, 2])
        #expect(pair.deliver(m, to: pair.b, from: roamed).0 == .packet(peer: 0, length: 40))
        #expect(pair.b.peers[0].endpoint == roamed)
    }

    @Test func cookieUnderLoad() {
        let pair = Pair()
        let initiation = pair.a.createInitiation(peer: 0, now: pair.now)!
        guard case .reply(let cookie) = pair.deliver(initiation, to: pair.b, from: pair.aEndpoint, underLoad: true).0 else {
            Issue.record("expected a cookie reply"); return
        }
        #expect(cookie.count == 64 && cookie[0] == 3)
        #expect(pair.b.drops[DropReason.cookieSent.rawValue] == 1)
        #expect(pair.deliver(cookie, to: pair.a, from: pair.bEndpoint).0 == .keepalive(peer: 0))
        pair.wall += 1
        let second = pair.a.createInitiation(peer: 0, now: pair.now)!
        #expect(second[132..<148].contains { $0 != 0 })
        guard case .reply(let response) = pair.deliver(second, to: pair.b, from: pair.aEndpoint, underLoad: true).0 else {
            Issue.record("mac2 not accepted"); return
        }
        #expect(response.count == 92)
        // The cookie is bound to the source address: the same message from elsewhere gets another cookie.
        pair.wall += 1
        let third = pair.a.createInitiation(peer: 0, now: pair.now)!
        let other = Endpoint(address: [10, 9, 0, 3], port: 51820)
        guard case .reply(let again) = pair.deliver(third, to: pair.b, from: other, underLoad: true).0 else { Issue.record("no reply"); return }
        #expect(again.count == 64)
    }

    @Test func rekeyKeepsTrafficFlowing() {
        let pair = Pair()
        pair.handshake()
        let first = pair.a.peers[0].current!.localIndex
        // Past rekey-after-time a send starts a new handshake while the old key still carries the packet.
        pair.now += 121_000_000_000
        pair.wall += 121
        let (s, m) = pair.seal(pair.a, from: [10, 0, 0, 1], to: [10, 0, 0, 2])
        guard case .send = s else { Issue.record("send \(s)"); return }
        #expect(pair.a.outbox.count == 1 && pair.a.outbox[0].message.count == 148)
        #expect(pair.deliver(m, to: pair.b, from: pair.aEndpoint).0 == .packet(peer: 0, length: 40))
        let initiation = pair.a.outbox.removeFirst().message
        guard case .reply(let response) = pair.deliver(initiation, to: pair.b, from: pair.aEndpoint).0 else { Issue.record("rekey"); return }
        guard case .reply(let keepalive) = pair.deliver(response, to: pair.a, from: pair.bEndpoint).0 else { Issue.record("rekey"); return }
        #expect(pair.deliver(keepalive, to: pair.b, from: pair.aEndpoint).0 == .keepalive(peer: 0))
        #expect(pair.a.peers[0].current!.localIndex != first)
        let (_, m2) = pair.seal(pair.b, from: [10, 0, 0, 2], to: [10, 0, 0, 1])
        #expect(pair.deliver(m2, to: pair.a, from: pair.bEndpoint).0 == .packet(peer: 0, length: 40))
        // Past reject-after-time without a handshake, old keys are refused.
        let (_, stale) = pair.seal(pair.b, from: [10, 0, 0, 2], to: [10, 0, 0, 1])
        pair.now += 181_000_000_000
        #expect(pair.deliver(stale, to: pair.a, from: pair.bEndpoint).0 == .dropped(.expiredKey))
    }
}

@Suite struct ReplayWindowTests {
    @Test func slidingWindow() {
        var w = ReplayWindow()
        func acc(_ c: UInt64) -> Bool { w.accept(c) }
        #expect(acc(0) && !acc(0))
        #expect(acc(2) && acc(1) && !acc(2))
        #expect(acc(5000))
        #expect(!acc(5000 - ReplayWindow.windowSize))
        #expect(acc(5000 - ReplayWindow.windowSize + 1))
        #expect(acc(4999) && !acc(4999))
        // A jump far ahead clears everything; the old range is too old.
        #expect(acc(1_000_000) && !acc(4000))
        // Bits of cleared blocks must not leak: counters of the new range that were seen in the old ring slots.
        for c in UInt64(1_000_001)...1_002_000 { #expect(acc(c)) }
        #expect(!acc(ReplayWindow.rejectAfterMessages))
        #expect(ReplayWindow.windowSize >= 1984)
    }

    @Test func outOfOrderWithinWindow() {
        var w = ReplayWindow()
        func acc(_ c: UInt64) -> Bool { w.accept(c) }
        var seen = Set<UInt64>()
        var rng = SplitMix.seeded("outOfOrderWithinWindow", fixed: 0x7265_706c_6179)
        var top: UInt64 = 0
        for _ in 0..<20000 {
            let c = top + UInt64.random(in: 0..<100, using: &rng) - min(top, 50)
            top = max(top, c)
            let fresh = !seen.contains(c)
            #expect(acc(c) == fresh)
            seen.insert(c)
        }
    }
}

@Suite struct AllowedIPsTests {
    @Test func longestPrefix() {
        var t = AllowedIPs()
        t.insert([10, 0, 0, 0], prefixLength: 8, peer: 1)
        t.insert([10, 1, 0, 0], prefixLength: 16, peer: 2)
        t.insert([10, 1, 2, 3], prefixLength: 32, peer: 3)
        t.insert([0xfd, 0] + [UInt8](repeating: 0, count: 14), prefixLength: 16, peer: 4)
        #expect(t.lookup([10, 200, 0, 1]) == 1)
        #expect(t.lookup([10, 1, 9, 9]) == 2)
        #expect(t.lookup([10, 1, 2, 3]) == 3)
        #expect(t.lookup([11, 0, 0, 1]) == nil)
        #expect(t.lookup([0xfd, 0] + [UInt8](repeating: 7, count: 14)) == 4)
        #expect(t.lookup([0xfe, 0] + [UInt8](repeating: 7, count: 14)) == nil)
        t.insert([0, 0, 0, 0], prefixLength: 0, peer: 9)
        #expect(t.lookup([11, 0, 0, 1]) == 9)
        t.insert([10, 1, 0, 0], prefixLength: 16, peer: 5)
        #expect(t.lookup([10, 1, 9, 9]) == 5)
    }
}

@Suite struct TimerTests {
    let second: UInt64 = 1_000_000_000

    @Test func handshakeRetryWithJitterThenGiveUp() {
        var t = PeerTimers()
        t.initiationSent(now: 0, jitter: 100_000_000)
        #expect(t.tick(now: 5 * second) == [])
        #expect(t.tick(now: 5 * second + 100_000_000) == .sendInitiation)
        var now = 5 * second + 100_000_000
        var retries = 1
        while now < 100 * second {
            t.initiationSent(now: now, jitter: 0)
            now += 5 * second
            let a = t.tick(now: now)
            if a.contains(.giveUp) { break }
            #expect(a.contains(.sendInitiation))
            retries += 1
        }
        #expect(now >= 90 * second && now < 100 * second && retries >= 17)
        #expect(!t.handshakeInProgress)
    }

    @Test func keepalivesAndRekeyRules() {
        var t = PeerTimers(persistentKeepalive: 25 * second)
        t.sessionDerived(now: 0, asInitiator: true)
        t.dataReceived(now: 1 * second)
        #expect(t.tick(now: 10 * second) == [])
        #expect(t.tick(now: 11 * second) == .sendKeepalive)
        // Data sent without an answer for 15 s starts a handshake.
        t.dataSent(now: 12 * second)
        #expect(t.tick(now: 26 * second) == [])
        #expect(t.tick(now: 27 * second).contains(.sendInitiation))
        // Persistent keepalive 25 s after the last send.
        #expect(t.tick(now: 37 * second) == .sendKeepalive)
        #expect(!t.shouldRekeyOnSend(now: 119 * second, counter: 0))
        #expect(t.shouldRekeyOnSend(now: 120 * second, counter: 0))
        #expect(t.shouldRekeyOnSend(now: 1, counter: 1 << 60))
        #expect(!t.shouldRekeyOnReceive(now: 164 * second) && t.shouldRekeyOnReceive(now: 165 * second))
        #expect(t.isUsable(keyCreated: 0, now: 179 * second) && !t.isUsable(keyCreated: 0, now: 180 * second))
        #expect(t.tick(now: 540 * second).contains(.zeroKeys))
        var responder = PeerTimers()
        responder.sessionDerived(now: 0, asInitiator: false)
        #expect(!responder.shouldRekeyOnSend(now: 150 * second, counter: 0))
    }
}

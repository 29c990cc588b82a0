import KilnTestSupport
import Testing
@testable import KilnSwitch

@Suite struct MACTableTests {
    @Test func learnsRefreshesAndMoves() {
        var t = MACTable(portCount: 4, limit: 16, portLimit: 8, agingSeconds: 10)
        #expect(t.learn(vlan: 1, mac: hostA, port: 0, now: 0) == .learned)
        #expect(t.learn(vlan: 1, mac: hostA, port: 0, now: 1) == .refreshed)
        #expect(t.learn(vlan: 1, mac: hostA, port: 2, now: 2) == .moved(from: 0))
        #expect(t.lookup(vlan: 1, mac: hostA, now: 3) == 2)
        #expect(t.count(port: 0) == 0 && t.count(port: 2) == 1 && t.moves == 1)
        #expect(t.learn(vlan: 1, mac: 0x01_00_5e_00_00_01, port: 0, now: 0) == .refused)  // group addresses
    }

    @Test func agedEntriesVanishAndExpireFreesThem() {
        var t = MACTable(portCount: 2, limit: 16, portLimit: 16, agingSeconds: 5)
        t.learn(vlan: 1, mac: hostA, port: 0, now: 0)
        t.learn(vlan: 1, mac: hostB, port: 1, now: 4 * second)
        #expect(t.lookup(vlan: 1, mac: hostA, now: 5 * second) == 0)
        #expect(t.lookup(vlan: 1, mac: hostA, now: 6 * second) == nil)
        #expect(t.expire(now: 6 * second) == 1)
        #expect(t.count == 1 && t.lookup(vlan: 1, mac: hostB, now: 6 * second) == 1)
    }

    @Test func globalAndPerPortBoundsHoldUnderAFlood() {
        var t = MACTable(portCount: 3, limit: 100, portLimit: 60, agingSeconds: 300)
        var rng = SplitMix.seeded("globalAndPerPortBoundsHoldUnderAFlood", fixed: 0x6d61_6374_6162)
        for i in 0..<10_000 {
            let mac = (UInt64.random(in: 0...0xffff_ffff_ffff, using: &rng) & ~0x0100_0000_0000)
            t.learn(vlan: 1, mac: mac, port: i % 2, now: UInt64(i))
        }
        #expect(t.count == 100)
        #expect(t.count(port: 0) <= 60 && t.count(port: 1) <= 60)
        #expect(t.refused > 9_000)
        // A flood on ports 0 and 1 filled the table: port 2 is locked out until entries age...
        #expect(t.learn(vlan: 1, mac: hostC, port: 2, now: 10_001) == .refused)
        // ...and gets in once they have.
        #expect(t.learn(vlan: 1, mac: hostC, port: 2, now: 400 * second) == .learned)
        #expect(t.count == 1)
    }

    @Test func perPortLimitLeavesRoomForOtherPorts() {
        var t = MACTable(portCount: 2, limit: 100, portLimit: 10, agingSeconds: 300)
        for i in 0..<50 { t.learn(vlan: 1, mac: 0x0200_0000_1000 + UInt64(i), port: 0, now: 0) }
        #expect(t.count(port: 0) == 10)
        #expect(t.learn(vlan: 1, mac: hostB, port: 1, now: 0) == .learned)
    }

    @Test func deletionKeepsEveryOtherEntryReachable() {
        var t = MACTable(portCount: 1, limit: 512, portLimit: 512, agingSeconds: 100)
        for i in 0..<500 { t.learn(vlan: UInt16(i % 7), mac: 0x0200_0000_0000 + UInt64(i) * 977, port: 0, now: UInt64(i % 2) * 200 * second) }
        t.expire(now: 250 * second)  // the even ones (seen at 0) age out
        #expect(t.count == 250)
        for i in 0..<500 {
            let found = t.lookup(vlan: UInt16(i % 7), mac: 0x0200_0000_0000 + UInt64(i) * 977, now: 250 * second)
            #expect(found == (i % 2 == 1 ? 0 : nil))
        }
        #expect(t.entries().count == 250)
    }
}

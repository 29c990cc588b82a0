import KilnConfig
import Testing
@testable import KilnDHCP

@Suite struct EngineTests {
    let server = v4("10.10.0.1")
    let sink = LogSink()
    func engine(_ config: DHCPInterfaceConfig = testInterface()) throws -> DHCPServerEngine {
        let s = sink
        return try DHCPServerEngine(config: config) { s.add($0) }
    }

    /// DISCOVER → OFFER → REQUEST(SELECTING) → ACK, the whole DORA.
    func dora(_ e: inout DHCPServerEngine, _ mac: MACAddress, now: Int64 = 1000) -> IPv4Address? {
        guard let offer = e.handle(clientPacket(.discover, mac: mac), now: now) else { return nil }
        let ack = e.handle(clientPacket(.request, mac: mac, requested: offer.packet.yiaddr, server: server), now: now)
        return ack?.packet.messageType == .ack ? ack?.packet.yiaddr : nil
    }

    @Test func discoverOffersFromPoolWithOptionsAndLinkUnicast() throws {
        var e = try engine()
        let mac = macN(1)
        let r = try must(e.handle(clientPacket(.discover, mac: mac), now: 1000))
        #expect(r.packet.messageType == .offer)
        #expect(r.packet.op == DHCPPacket.bootReply && r.packet.xid == 0x1234)
        #expect(e.table.pool.contains(r.packet.yiaddr))
        #expect(r.destination == .hardware(mac, r.packet.yiaddr))
        #expect(r.packet.serverIdentifier == server)
        #expect(r.packet.subnetMask == v4("255.255.255.0"))
        #expect(r.packet.broadcastAddress == v4("10.10.0.255"))
        #expect(r.packet.routers == [server])
        #expect(r.packet.dnsServers == [v4("10.10.0.1"), v4("9.9.9.9")])
        #expect(r.packet.domainName == "branch.example")
        #expect(r.packet.leaseTime == 3600 && r.packet.renewalTime == 1800 && r.packet.rebindingTime == 3150)
        #expect(r.packet.interfaceMTU == nil)   // not in the parameter request list
        #expect(r.packet.classlessRoutes == [
            DHCPClasslessRoute(destination: v4("10.99.0.0"), prefixLength: 16, router: server),
            DHCPClasslessRoute(destination: v4("0.0.0.0"), prefixLength: 0, router: server),
        ])
        #expect(e.table.lease(for: clientPacket(.discover, mac: mac).clientKey)?.state == .offered)
        #expect(!e.leasesChanged)
    }

    @Test func broadcastFlagAndRequestedAddressAreHonoured() throws {
        var e = try engine()
        let r = try must(e.handle(clientPacket(.discover, mac: macN(2), requested: v4("10.10.0.107"), broadcast: true), now: 1))
        #expect(r.packet.yiaddr == v4("10.10.0.107"))
        #expect(r.destination == .broadcast)
        // A requested address outside the pool is not offered.
        let o = try must(e.handle(clientPacket(.discover, mac: macN(3), requested: v4("10.10.0.20")), now: 1))
        #expect(o.packet.yiaddr != v4("10.10.0.20") && e.table.pool.contains(o.packet.yiaddr))
    }

    @Test func offerIsReservedAndRepeatable() throws {
        var e = try engine()
        let a = try must(e.handle(clientPacket(.discover, mac: macN(1)), now: 100)).packet.yiaddr
        let again = try must(e.handle(clientPacket(.discover, mac: macN(1), xid: 9), now: 101)).packet.yiaddr
        let other = try must(e.handle(clientPacket(.discover, mac: macN(2), requested: a), now: 101)).packet.yiaddr
        #expect(a == again)
        #expect(other != a)
        // After the offer lapses (30 s) the address is free for others.
        e.tick(now: 131)
        let taken = try must(e.handle(clientPacket(.discover, mac: macN(3), requested: a), now: 131)).packet.yiaddr
        #expect(taken == a)
    }

    @Test func staticLeaseByMAC() throws {
        var e = try engine()
        let mac = try MACAddress("52:54:00:aa:00:01")
        #expect(dora(&e, mac) == v4("10.10.0.50"))
        // The static address is never handed from the pool, and another MAC cannot request it.
        let r = try must(e.handle(clientPacket(.request, mac: macN(9), requested: v4("10.10.0.50")), now: 1000))
        #expect(r.packet.messageType == .nak && r.destination == .broadcast)
    }

    @Test func selectingAckBindsAndOtherServerWithdrawsOffer() throws {
        var e = try engine()
        let a = try must(dora(&e, macN(1)))
        let lease = try #require(e.table.lease(for: clientPacket(.request, mac: macN(1)).clientKey))
        #expect(lease.state == .bound && lease.address == a && lease.expiry == 1000 + 3600)
        #expect(e.leasesChanged)
        #expect(sink.contains("ACK \(a)"))
        let offered = try must(e.handle(clientPacket(.discover, mac: macN(2)), now: 1000)).packet.yiaddr
        #expect(e.handle(clientPacket(.request, mac: macN(2), requested: offered, server: v4("10.10.0.2")), now: 1000) == nil)
        #expect(e.table.byAddress[offered] == nil)
    }

    @Test func selectingForAddressHeldByAnotherIsNAKed() throws {
        var e = try engine()
        let a = try must(dora(&e, macN(1)))
        let r = try must(e.handle(clientPacket(.request, mac: macN(2), requested: a, server: server), now: 1001))
        #expect(r.packet.messageType == .nak)
        #expect(r.packet.yiaddr.value == 0 && r.packet.serverIdentifier == server && r.packet.message != nil)
        #expect(r.destination == .broadcast)
    }

    @Test func initRebootAcksValidAndNaksWrong() throws {
        var e = try engine()
        // No record, address free in the pool: ACK (authoritative).
        let ok = try must(e.handle(clientPacket(.request, mac: macN(1), requested: v4("10.10.0.105")), now: 10))
        #expect(ok.packet.messageType == .ack && ok.packet.yiaddr == v4("10.10.0.105"))
        // Another network: NAK.
        let wrongNet = try must(e.handle(clientPacket(.request, mac: macN(2), requested: v4("192.168.1.7")), now: 10))
        #expect(wrongNet.packet.messageType == .nak)
        // Someone else's address: NAK.
        let taken = try must(e.handle(clientPacket(.request, mac: macN(3), requested: v4("10.10.0.105")), now: 10))
        #expect(taken.packet.messageType == .nak)
        // On the subnet but outside the pool: NAK.
        let outside = try must(e.handle(clientPacket(.request, mac: macN(4), requested: v4("10.10.0.20")), now: 10))
        #expect(outside.packet.messageType == .nak)
    }

    @Test func renewingAndRebindingExtendTheLease() throws {
        var e = try engine()
        let a = try must(dora(&e, macN(1), now: 0))
        let renew = try must(e.handle(clientPacket(.request, mac: macN(1), ciaddr: a), now: 1800))
        #expect(renew.packet.messageType == .ack && renew.packet.yiaddr == a && renew.packet.ciaddr == a)
        #expect(renew.destination == .unicast(a))
        #expect(e.table.byAddress[a]?.expiry == Int64(1800 + 3600))
        let rebind = try must(e.handle(clientPacket(.request, mac: macN(1), ciaddr: a, broadcast: true), now: 4000))
        #expect(rebind.packet.messageType == .ack && rebind.destination == .unicast(a))
        #expect(e.table.byAddress[a]?.expiry == Int64(4000 + 3600))
        #expect(sink.contains("REBINDING") && sink.contains("RENEWING"))
        // Renewing an address that is not yours: NAK. Rebinding from another subnet: silence.
        let b = try must(dora(&e, macN(2), now: 4000))
        #expect(e.handle(clientPacket(.request, mac: macN(1), ciaddr: b), now: 4001)?.packet.messageType == .nak)
        #expect(e.handle(clientPacket(.request, mac: macN(1), ciaddr: v4("172.16.0.9"), broadcast: true), now: 4001) == nil)
    }

    @Test func releaseKeepsAddressForTheSameClient() throws {
        var e = try engine()
        let a = try must(dora(&e, macN(1)))
        #expect(e.handle(clientPacket(.release, mac: macN(1), server: server, ciaddr: a), now: 1100) == nil)
        #expect(e.table.byAddress[a]?.state == .released)
        let other = try must(dora(&e, macN(2), now: 1101))
        #expect(other != a)   // free addresses are used before a released one
        #expect(dora(&e, macN(1), now: 1102) == a)
        // A RELEASE for an address the client does not hold changes nothing.
        #expect(e.handle(clientPacket(.release, mac: macN(3), ciaddr: a), now: 1103) == nil)
        #expect(e.table.byAddress[a]?.state == .bound)
    }

    @Test func declineTakesAddressOutForAWhile() throws {
        var e = try engine(testInterface(pool: "10.10.0.100-10.10.0.100"))
        let a = try must(dora(&e, macN(1), now: 0))
        #expect(e.handle(clientPacket(.decline, mac: macN(1), requested: a, server: server), now: 5) == nil)
        #expect(e.table.byAddress[a]?.state == .declined)
        #expect(e.handle(clientPacket(.discover, mac: macN(2)), now: 6) == nil)
        #expect(sink.contains("exhausted"))
        e.tick(now: 5 + 600)
        #expect(e.handle(clientPacket(.discover, mac: macN(2)), now: 605)?.packet.yiaddr == a)
    }

    @Test func informAcksWithoutLease() throws {
        var e = try engine()
        let r = try must(e.handle(clientPacket(.inform, mac: macN(7), ciaddr: v4("10.10.0.30")), now: 1))
        #expect(r.packet.messageType == .ack && r.packet.yiaddr.value == 0 && r.packet.leaseTime == nil)
        #expect(r.packet.ciaddr == v4("10.10.0.30") && r.destination == .unicast(v4("10.10.0.30")))
        #expect(r.packet.dnsServers.count == 2)
        #expect(e.table.byAddress.isEmpty)
    }

    @Test func exhaustionAndExpiry() throws {
        var e = try engine()
        for i in 1...10 { #expect(dora(&e, macN(i), now: 0) != nil) }
        #expect(e.handle(clientPacket(.discover, mac: macN(11)), now: 1) == nil)
        #expect(sink.contains("pool 10.10.0.100-10.10.0.109 exhausted"))
        e.tick(now: 3600)
        #expect(sink.contains("expired"))
        #expect(e.table.byAddress.values.allSatisfy { $0.state == .released })
        let a = try must(dora(&e, macN(11), now: 3601))
        #expect(e.table.pool.contains(a))
        #expect(e.table.invariantViolations().isEmpty)
        // The old holder of `a` asks for it back: taken, NAK.
        let prior = try #require(e.table.byAddress[a])
        #expect(prior.mac == macN(11))
    }

    @Test func mtuAndRoutesOnlyWhenAskedAndNoPRLGetsAll() throws {
        var e = try engine()
        let noRoutes = try must(e.handle(clientPacket(.discover, mac: macN(1), prl: [1, 3, 6]), now: 0))
        #expect(noRoutes.packet.classlessRoutes == nil && noRoutes.packet.interfaceMTU == nil)
        let all = try must(e.handle(clientPacket(.discover, mac: macN(2), prl: nil), now: 0))
        #expect(all.packet.interfaceMTU == 1500)
    }

    @Test func relayedBOOTPAndRepliesAreIgnored() throws {
        var e = try engine()
        var relayed = clientPacket(.discover, mac: macN(1)); relayed.giaddr = v4("10.20.0.1")
        #expect(e.handle(relayed, now: 0) == nil)
        var bootp = clientPacket(.discover, mac: macN(1)); bootp.messageType = nil
        #expect(e.handle(bootp, now: 0) == nil)
        #expect(e.handle(clientPacket(.offer, mac: macN(1)), now: 0) == nil)
        var token = clientPacket(.discover, mac: macN(1)); token.htype = 6
        #expect(e.handle(token, now: 0) == nil)
    }

    @Test func clientIdentifierKeysTheLeaseAndIsEchoed() throws {
        var e = try engine()
        var d = clientPacket(.discover, mac: macN(1)); d.clientIdentifier = [0xff, 1, 2, 3, 4]
        let o = try must(e.handle(d, now: 0))
        #expect(o.packet.clientIdentifier == [0xff, 1, 2, 3, 4])
        #expect(e.table.byClient[[0xff, 1, 2, 3, 4]] == o.packet.yiaddr)
    }
}

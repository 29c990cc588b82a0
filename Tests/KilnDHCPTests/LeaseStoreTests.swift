import Glibc
import KilnConfig
import Testing
@testable import KilnDHCP

func scratchDir() -> String {
    var template = Array("/tmp/kiln-dhcp-test-XXXXXX".utf8CString)
    return template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
}

@Suite struct LeaseStoreTests {
    @Test func leasesSurviveARestart() throws {
        let dir = scratchDir()
        defer { _ = system("rm -rf '\(dir)'") }
        let config = testInterface(leaseFile: dir + "/lan.10.leases")
        var e = try DHCPServerEngine(config: config)
        let server = v4("10.10.0.1")
        var bound: [MACAddress: IPv4Address] = [:]
        for i in 1...5 {
            let o = try must(e.handle(clientPacket(.discover, mac: macN(i)), now: 100)).packet.yiaddr
            #expect(e.handle(clientPacket(.request, mac: macN(i), requested: o, server: server), now: 100)?.packet.messageType == .ack)
            bound[macN(i)] = o
        }
        _ = e.handle(clientPacket(.release, mac: macN(5), ciaddr: bound[macN(5)]!), now: 101)
        _ = e.handle(clientPacket(.discover, mac: macN(6)), now: 101)     // an offer: not persisted
        try DHCPLeaseStore.save(e.table, interface: config.name, path: config.leaseFile)

        let sink = LogSink()
        var restarted = try DHCPServerEngine(config: config)
        restarted.replaceTable(DHCPLeaseStore.load(path: config.leaseFile, into: restarted.table) { sink.add($0) })
        #expect(sink.contains("loaded 5 leases"))
        #expect(restarted.table.byAddress.count == 5)
        #expect(restarted.table.byAddress[bound[macN(5)]!]?.state == .released)
        for i in 1...4 {
            let l = try #require(restarted.table.lease(for: clientPacket(.discover, mac: macN(i)).clientKey))
            #expect(l.address == bound[macN(i)] && l.state == .bound && l.expiry == 3700)
        }
        // A restarted server gives a returning client its old address (INIT-REBOOT ACK, DISCOVER offer).
        #expect(restarted.handle(clientPacket(.request, mac: macN(2), requested: bound[macN(2)]), now: 200)?.packet.messageType == .ack)
        #expect(restarted.handle(clientPacket(.discover, mac: macN(5)), now: 200)?.packet.yiaddr == bound[macN(5)])
        #expect(restarted.table.invariantViolations().isEmpty)
    }

    @Test func corruptFileStartsEmptyAndIsSetAside() throws {
        let dir = scratchDir()
        defer { _ = system("rm -rf '\(dir)'") }
        let path = dir + "/lan.10.leases"
        let config = testInterface(leaseFile: path)
        let empty = try DHCPServerEngine(config: config).table
        let bad: [String] = [
            "{\"version\":1,\"interface\":\"lan.10\",\"leases\":[{\"client\":\"01",   // truncated
            "\u{0}\u{1}garbage",
            #"{"version":2,"interface":"lan.10","leases":[]}"#,
            #"{"version":1,"interface":"lan.10","leases":[{"client":"zz","address":"10.10.0.100","expiry":5,"state":"bound"}]}"#,
            #"{"version":1,"interface":"lan.10","leases":[{"client":"01","address":"10.10.0.999","expiry":5,"state":"bound"}]}"#,
            #"{"version":1,"interface":"lan.10","leases":[{"client":"01","address":"10.10.0.100","expiry":5,"state":"weird"}]}"#,
        ]
        for text in bad {
            try writeFileAtomically(path, Array(text.utf8))
            let sink = LogSink()
            let t = DHCPLeaseStore.load(path: path, into: empty) { sink.add($0) }
            #expect(t.byAddress.isEmpty, "\(text)")
            #expect(sink.contains("is corrupt"), "\(text): \(sink.lines)")
            #expect(access(path + ".corrupt", F_OK) == 0 && access(path, F_OK) != 0)
        }
        // Missing file: silently empty.
        let sink = LogSink()
        #expect(DHCPLeaseStore.load(path: dir + "/none", into: empty) { sink.add($0) }.byAddress.isEmpty && sink.lines.isEmpty)
    }

    @Test func recordsThatNoLongerFitThePoolAreDropped() throws {
        let text = #"""
        {"version":1,"interface":"lan.10","leases":[
          {"client":"01525400000001","mac":"52:54:00:00:00:01","address":"10.10.0.100","expiry":5000,"state":"bound"},
          {"client":"01525400000002","mac":"52:54:00:00:00:02","address":"10.10.0.100","expiry":5000,"state":"bound"},
          {"client":"01525400000003","mac":"52:54:00:00:00:03","address":"10.10.0.180","expiry":5000,"state":"bound"},
          {"client":"01525400000004","mac":"52:54:00:00:00:04","address":"10.10.0.50","expiry":5000,"state":"bound"},
          {"client":"","address":"10.10.0.101","expiry":5000,"state":"declined"}]}
        """#
        let empty = try DHCPServerEngine(config: testInterface()).table
        let (t, dropped) = try DHCPLeaseStore.decode(Array(text.utf8), into: empty)
        #expect(t.byAddress.count == 2 && dropped.count == 3)
        #expect(t.byAddress[v4("10.10.0.101")]?.state == .declined)
        #expect(t.invariantViolations().isEmpty)
    }
}

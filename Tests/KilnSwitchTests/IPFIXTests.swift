import KilnTestSupport
import Foundation
import Testing
@testable import KilnSwitch

func sampleRecords() -> [FlowRecord] {
    var v4 = FlowKey()
    v4.sourceLow = 0xc000_020a; v4.destinationLow = 0xc000_020b  // 192.0.2.10 → 192.0.2.11
    v4.sourcePort = 40000; v4.destinationPort = 53; v4.proto = 17; v4.vlan = 10; v4.ingressPort = 1
    var v6 = FlowKey()
    v6.isIPv6 = true
    v6.sourceHigh = 0x2001_0db8_0000_0000; v6.sourceLow = 1; v6.destinationHigh = 0x2001_0db8_0000_0000; v6.destinationLow = 2
    v6.sourcePort = 443; v6.destinationPort = 50000; v6.proto = 6; v6.vlan = 20; v6.ingressPort = 3
    return [
        FlowRecord(key: v4, packets: 7, bytes: 742, startMilliseconds: 1_700_000_000_000, endMilliseconds: 1_700_000_001_500),
        FlowRecord(key: v6, packets: 3, bytes: 258, startMilliseconds: 1_700_000_000_100, endMilliseconds: 1_700_000_000_900),
    ]
}

@Suite struct IPFIXTests {
    @Test func matchesGoldenBytes() throws {
        let (messages, seq) = IPFIX.encode(sampleRecords(), exportTime: 1_700_000_002, sequence: 5, domain: 42)
        #expect(messages.count == 1 && seq == 7)
        let golden = try String(contentsOfFile: goldenDirectory + "/ipfix-v4-v6.hex", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(hex(messages[0]) == golden)
    }

    @Test func tsharkDecodesCountsAddressesAndPorts() throws {
        let (messages, _) = IPFIX.encode(sampleRecords(), exportTime: 1_700_000_002, sequence: 5, domain: 42)
        let dir = try temporaryDirectory("ipfix")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = dir + "/ipfix.pcap"
        FileManager.default.createFile(atPath: file, contents: Data(pcapOfUDP(messages)))
        let r = try sh(["tshark", "-r", file, "-d", "udp.port==4739,cflow", "-T", "fields", "-E", "separator=|", "-E", "aggregator=,",
                        "-e", "cflow.od_id", "-e", "cflow.packets", "-e", "cflow.octets", "-e", "cflow.srcaddr",
                        "-e", "cflow.srcaddrv6", "-e", "cflow.dstport", "-e", "cflow.vlanid", "-e", "cflow.protocol"])
        #expect(r.status == 0)
        let line = r.output.split(separator: "\n").last.map(String.init) ?? ""
        #expect(line == "42|7,3|742,258|192.0.2.10|2001:db8::1|53,50000|10,20|17,6", "tshark said: \(r.output)")
    }

    @Test func splitsLargeExportsAcrossMessagesWithSequenceNumbers() throws {
        var records: [FlowRecord] = []
        for i in 0..<100 {
            var k = FlowKey(); k.sourceLow = UInt64(i); k.proto = 17
            records.append(FlowRecord(key: k, packets: UInt64(i + 1), bytes: 100, startMilliseconds: 0, endMilliseconds: 0))
        }
        let (messages, seq) = IPFIX.encode(records, exportTime: 0, sequence: 0, domain: 1)
        #expect(seq == 100)
        #expect(messages.count > 1)
        #expect(messages.allSatisfy { $0.count <= IPFIX.maxMessage })
        let dir = try temporaryDirectory("ipfix-split")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        FileManager.default.createFile(atPath: dir + "/s.pcap", contents: Data(pcapOfUDP(messages)))
        let r = try run("tshark -r \(dir)/s.pcap -d udp.port==4739,cflow -T fields -e cflow.packets 2>/dev/null | tr ',' '\\n' | awk '{s+=$1} END {print NR, s}'")
        #expect(r.trimmingCharacters(in: .whitespacesAndNewlines) == "100 5050")
    }
}

@Suite struct FlowTableTests {
    @Test func countsPacketsAndBytesPerFlowWithinItsBound() {
        var t = FlowTable(capacity: 4)
        var k = FlowKey(); k.proto = 6
        for i in 0..<10 {
            k.sourcePort = UInt16(i % 6)
            t.account(k, bytes: 100, nowMilliseconds: UInt64(i))
        }
        #expect(t.count == 4)
        #expect(t.untracked == 2)  // ports 4 and 5 found the table full
        var records: [FlowRecord] = []
        t.drain { records.append($0) }
        #expect(records.count == 4 && t.count == 0)
        #expect(records.first { $0.key.sourcePort == 0 }?.packets == 2)
        #expect(records.first { $0.key.sourcePort == 0 }?.bytes == 200)
        #expect(records.first { $0.key.sourcePort == 0 }?.endMilliseconds == 6)
    }

    @Test func parsesIPv4FiveTuple() {
        var ip: [UInt8] = [0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]
        ip += [0x30, 0x39, 0x00, 0x35, 0, 8, 0, 0]
        let f = frame(dst: hostB, src: hostA, vid: 10, payload: ip)
        let key = f.withUnsafeBytes { raw in
            FlowKey.parse(raw.baseAddress!, length: raw.count, header: FrameHeader(raw.baseAddress!, length: raw.count)!, vlan: 10, port: 2)
        }
        #expect(key?.sourceLow == 0x0a00_0001 && key?.destinationLow == 0x0a00_0002)
        #expect(key?.sourcePort == 12345 && key?.destinationPort == 53 && key?.proto == 17 && key?.ingressPort == 2)
        ip[6] = 0x00; ip[7] = 0x10  // a later fragment: no ports
        let frag = frame(dst: hostB, src: hostA, payload: ip).withUnsafeBytes { raw in
            FlowKey.parse(raw.baseAddress!, length: raw.count, header: FrameHeader(raw.baseAddress!, length: raw.count)!, vlan: 1, port: 0)
        }
        #expect(frag?.sourcePort == 0 && frag?.proto == 17)
    }
}

import Foundation
import KilnConfig
import Testing
@testable import KilnDHCP

/// A DISCOVER sent by `busybox udhcpc -x hostname:kilntest` (BusyBox 1.35), captured with tshark: the header's
/// first 44 bytes, 192 zero bytes of sname/file, then cookie and options, padded to 300 bytes.
let udhcpcDiscover: [UInt8] = {
    let head = hexBytes("010106000954e117000000000000000000000000000000000000000052540012345600000000000000000000")
    let tail = hexBytes("63825363 3501013902024037070103060c0f1c2a0c086b696c6e746573743c0c756468637020312e33352e303d0701525400123456ff")
    let body = head + [UInt8](repeating: 0, count: 192) + tail
    return body + [UInt8](repeating: 0, count: 300 - body.count)
}()

/// The options of the ACK below, written out by hand from RFC 2132 and RFC 3442 §3.
let ackOptionsGolden = hexBytes("""
    63825363 350105 36040a0a0001 330400000e10 3a0400000708 3b0400000c4e 0104ffffff00 03040a0a0001
    06080a0a000109090909 0f0e6272616e63682e6578616d706c65 1a0205dc 1c040a0a00ff
    790c100a630a0a0001000a0a0001 ff
    """)

func sampleAck() -> DHCPPacket {
    var p = DHCPPacket()
    p.op = 2; p.xid = 0x0954e117; p.yiaddr = v4("10.10.0.100")
    p.chaddr = [0x52, 0x54, 0, 0x12, 0x34, 0x56] + Array(repeating: 0, count: 10)
    p.messageType = .ack; p.serverIdentifier = v4("10.10.0.1")
    p.leaseTime = 3600; p.renewalTime = 1800; p.rebindingTime = 3150
    p.subnetMask = v4("255.255.255.0"); p.routers = [v4("10.10.0.1")]; p.dnsServers = [v4("10.10.0.1"), v4("9.9.9.9")]
    p.domainName = "branch.example"; p.interfaceMTU = 1500; p.broadcastAddress = v4("10.10.0.255")
    p.classlessRoutes = [DHCPClasslessRoute(destination: v4("10.99.0.0"), prefixLength: 16, router: v4("10.10.0.1")),
                         DHCPClasslessRoute(destination: v4("0.0.0.0"), prefixLength: 0, router: v4("10.10.0.1"))]
    return p
}

@Suite struct CodecTests {
    @Test func parsesARealUdhcpcDiscover() throws {
        let p = try DHCPCodec.parse(udhcpcDiscover)
        #expect(p.op == 1 && p.htype == 1 && p.hlen == 6 && p.xid == 0x0954e117)
        #expect(p.clientMAC == (try MACAddress("52:54:00:12:34:56")))
        #expect(p.messageType == .discover)
        #expect(p.maxMessageSize == 576)
        #expect(p.parameterRequestList == [1, 3, 6, 12, 15, 28, 42])
        #expect(p.hostname == "kilntest")
        #expect(p.clientIdentifier == [1, 0x52, 0x54, 0, 0x12, 0x34, 0x56])
        #expect(p.otherOptions == [DHCPRawOption(code: 60, value: Array("udhcp 1.35.0".utf8))])
        #expect(!p.isBroadcast)
    }

    @Test func serializesGoldenBytes() throws {
        let bytes = DHCPCodec.serialize(sampleAck())
        #expect(bytes.count == 236 + ackOptionsGolden.count)   // longer than 300: no padding
        #expect(Array(bytes[0..<12]) == hexBytes("02010600 0954e117 00000000"))
        #expect(Array(bytes[16..<20]) == [10, 10, 0, 100])
        #expect(Array(bytes[28..<34]) == [0x52, 0x54, 0, 0x12, 0x34, 0x56])
        #expect(Array(bytes[236..<(236 + ackOptionsGolden.count)]) == ackOptionsGolden)
        #expect(try DHCPCodec.parse(bytes) == withFixedFields(sampleAck()))
    }

    func withFixedFields(_ p: DHCPPacket) -> DHCPPacket {
        var q = p; q.sname = Array(repeating: 0, count: 64); q.file = Array(repeating: 0, count: 128); return q
    }

    /// The encoder's output, framed by DHCPFrame and read back by tshark: every field and both checksums.
    @Test func tsharkDecodesOurAck() throws {
        let payload = DHCPCodec.serialize(sampleAck())
        let ip = DHCPFrame.ipv4UDP(source: v4("10.10.0.1"), sourcePort: 67, destination: v4("10.10.0.100"), destinationPort: 68, payload: payload)
        let frame = DHCPFrame.ethernet(destination: try MACAddress("52:54:00:12:34:56"), source: try MACAddress("52:54:00:00:00:01"), packet: ip)
        let fields = ["dhcp.type", "dhcp.id", "dhcp.ip.your", "dhcp.hw.mac_addr", "dhcp.option.dhcp", "dhcp.option.dhcp_server_id",
                      "dhcp.option.ip_address_lease_time", "dhcp.option.renewal_time_value", "dhcp.option.rebinding_time_value",
                      "dhcp.option.subnet_mask", "dhcp.option.router", "dhcp.option.domain_name_server", "dhcp.option.domain_name",
                      "dhcp.option.interface_mtu", "dhcp.option.broadcast_address", "ip.checksum.status", "udp.checksum.status"]
        let out = try tshark(frames: [frame], fields: fields)
        let row = out.split(separator: "\n").first.map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) } ?? []
        try #require(row.count == fields.count, "tshark printed: \(out)")
        let got = Dictionary(uniqueKeysWithValues: zip(fields, row))
        #expect(got["dhcp.type"] == "2")
        #expect(got["dhcp.id"] == "0x0954e117")
        #expect(got["dhcp.ip.your"] == "10.10.0.100")
        #expect(got["dhcp.hw.mac_addr"] == "52:54:00:12:34:56")
        #expect(got["dhcp.option.dhcp"] == "5")
        #expect(got["dhcp.option.dhcp_server_id"] == "10.10.0.1")
        #expect(got["dhcp.option.ip_address_lease_time"] == "3600")
        #expect(got["dhcp.option.renewal_time_value"] == "1800")
        #expect(got["dhcp.option.rebinding_time_value"] == "3150")
        #expect(got["dhcp.option.subnet_mask"] == "255.255.255.0")
        #expect(got["dhcp.option.router"] == "10.10.0.1")
        #expect(got["dhcp.option.domain_name_server"] == "10.10.0.1,9.9.9.9")
        #expect(got["dhcp.option.domain_name"] == "branch.example")
        #expect(got["dhcp.option.interface_mtu"] == "1500")
        #expect(got["dhcp.option.broadcast_address"] == "10.10.0.255")
        #expect(got["ip.checksum.status"] == "2" || got["ip.checksum.status"] == "1")
        #expect(got["udp.checksum.status"] == "1", "UDP checksum must verify")
        // Option 121 as tshark spells it out.
        let verbose = try tshark(frames: [frame], fields: nil)
        #expect(verbose.contains("10.99.0.0/16-10.10.0.1"), "\(verbose)")
        #expect(verbose.contains("default-10.10.0.1"), "\(verbose)")
    }

    @Test func longOptionsAreSplitAndConcatenated() throws {
        var p = DHCPPacket()
        p.messageType = .ack
        p.otherOptions = [DHCPRawOption(code: 77, value: (0..<300).map { UInt8($0 & 0xff) })]
        let bytes = DHCPCodec.serialize(p)
        #expect(bytes[243] == 77 && bytes[244] == 255 && bytes[243 + 257] == 77 && bytes[244 + 257] == 45)
        #expect(try DHCPCodec.parse(bytes).otherOptions == p.otherOptions)
    }

    @Test func overloadedFileAndSnameCarryOptions() throws {
        var b = [UInt8](repeating: 0, count: 240)
        b[0] = 1; b[1] = 1; b[2] = 6
        b[236..<240] = [99, 130, 83, 99]
        b += [52, 1, 3, 53, 1, 3, 255]                  // overload both, REQUEST
        b[108..<114] = [50, 4, 10, 10, 0, 105][...]      // file: requested address
        b[114] = 255
        b[44..<50] = [54, 4, 10, 10, 0, 1][...]          // sname: server id
        b[50] = 255
        let p = try DHCPCodec.parse(b)
        #expect(p.messageType == .request && p.requestedAddress == v4("10.10.0.105") && p.serverIdentifier == v4("10.10.0.1"))
        #expect(p.file.isEmpty && p.sname.isEmpty)
        b[242] = 4
        #expect(throws: DHCPParseError.badOverload(4)) { try DHCPCodec.parse(b) }
    }

    @Test func classlessRoutesRoundTripRFC3442Examples() throws {
        // RFC 3442 §3 table: 0/0 → 1 byte, 10.0.0.0/8 → 2, 10.17.0.0/16 → 3, 10.27.129.0/24 → 4, 10.229.0.128/25 → 5.
        let routes = [("0.0.0.0", 0), ("10.0.0.0", 8), ("10.17.0.0", 16), ("10.27.129.0", 24), ("10.229.0.128", 25), ("10.198.122.47", 32)]
            .map { DHCPClasslessRoute(destination: v4($0.0), prefixLength: $0.1, router: v4("10.0.0.1")) }
        let enc = DHCPCodec.encodeRoutes(routes)
        #expect(enc.count == routes.count * 5 + (0 + 1 + 2 + 3 + 4 + 4))
        #expect(Array(enc[0..<5]) == [0, 10, 0, 0, 1])
        #expect(Array(enc[5..<11]) == [8, 10, 10, 0, 0, 1])
        #expect(try DHCPCodec.decodeRoutes(enc[...]) == routes)
        #expect(throws: DHCPParseError.badClasslessRoute(offset: 0)) { try DHCPCodec.decodeRoutes([33, 1, 2, 3, 4, 5][...]) }
        #expect(throws: DHCPParseError.badClasslessRoute(offset: 0)) { try DHCPCodec.decodeRoutes([8, 10, 1, 2, 3][...]) }
        #expect(throws: DHCPParseError.badClasslessRoute(offset: 0)) { try DHCPCodec.decodeRoutes([4, 0x1f, 1, 2, 3, 4][...]) }
    }

    @Test func malformedInputThrowsTypedErrors() throws {
        #expect(throws: DHCPParseError.truncated(length: 0)) { try DHCPCodec.parse([]) }
        #expect(throws: DHCPParseError.truncated(length: 239)) { try DHCPCodec.parse(Array(udhcpcDiscover.prefix(239))) }
        var b = udhcpcDiscover; b[0] = 3
        #expect(throws: DHCPParseError.badOp(3)) { try DHCPCodec.parse(b) }
        b = udhcpcDiscover; b[2] = 17
        #expect(throws: DHCPParseError.badHardwareAddressLength(17)) { try DHCPCodec.parse(b) }
        b = udhcpcDiscover; b[237] = 0
        #expect(throws: DHCPParseError.missingMagicCookie) { try DHCPCodec.parse(b) }
        b = Array(udhcpcDiscover.prefix(240)) + [53, 1, 1, 12, 40, 65]
        #expect(throws: DHCPParseError.optionOverrun(code: 12, offset: 243)) { try DHCPCodec.parse(b) }
        b = Array(udhcpcDiscover.prefix(240)) + [53, 1, 9]
        #expect(throws: DHCPParseError.badMessageType(9)) { try DHCPCodec.parse(b) }
        b = Array(udhcpcDiscover.prefix(240)) + [53, 2, 1, 1]
        #expect(throws: DHCPParseError.badOptionLength(code: 53, length: 2)) { try DHCPCodec.parse(b) }
        b = Array(udhcpcDiscover.prefix(240)) + [50, 3, 10, 0, 0]
        #expect(throws: DHCPParseError.badOptionLength(code: 50, length: 3)) { try DHCPCodec.parse(b) }
        b = Array(udhcpcDiscover.prefix(240)) + [57, 2, 0, 100]
        #expect(throws: DHCPParseError.badOptionLength(code: 57, length: 100)) { try DHCPCodec.parse(b) }
        // Missing END is tolerated; a lone code byte at the end is not.
        #expect(try DHCPCodec.parse(Array(udhcpcDiscover.prefix(240)) + [53, 1, 1]).messageType == .discover)
        #expect(throws: DHCPParseError.optionOverrun(code: 53, offset: 240)) { try DHCPCodec.parse(Array(udhcpcDiscover.prefix(240)) + [53]) }
    }

    @Test func frameChecksumsMatchRFC1071() {
        // The IPv4 header example of RFC 1071 §3-style: a header whose checksum field holds its own sum verifies to 0.
        let ip = DHCPFrame.ipv4UDP(source: v4("10.10.0.1"), sourcePort: 67, destination: v4("255.255.255.255"), destinationPort: 68, payload: [1, 2, 3])
        #expect(DHCPFrame.checksum(ip[0..<20], initial: 0) == 0)
        #expect(ip.count == 31 && ip[9] == 17 && ip[2] == 0 && ip[3] == 31)
    }
}

/// Writes an Ethernet pcap and runs tshark over it: `-T fields` for the named fields, else `-V` text.
func tshark(frames: [[UInt8]], fields: [String]?) throws -> String {
    var pcap: [UInt8] = []
    func le32(_ x: UInt32) { pcap += withUnsafeBytes(of: x.littleEndian, Array.init) }
    func le16(_ x: UInt16) { pcap += withUnsafeBytes(of: x.littleEndian, Array.init) }
    le32(0xa1b2c3d4); le16(2); le16(4); le32(0); le32(0); le32(65535); le32(1)
    for f in frames { le32(1); le32(0); le32(UInt32(f.count)); le32(UInt32(f.count)); pcap += f }
    let path = NSTemporaryDirectory() + "kiln-dhcp-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).pcap"
    try Data(pcap).write(to: URL(fileURLWithPath: path))
    defer { try? FileManager.default.removeItem(atPath: path) }
    var args = ["-r", path, "-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE"]
    if let fields { args += ["-T", "fields"] + fields.flatMap { ["-e", $0] } } else { args += ["-V"] }
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/tshark")
    p.arguments = args
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = FileHandle.nullDevice
    try p.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return String(decoding: data, as: UTF8.self)
}

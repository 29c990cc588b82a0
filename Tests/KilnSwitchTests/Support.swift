import KilnTestSupport
import Foundation

/// The Golden directory next to this file.
let goldenDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden").path

/// A classic pcap file holding each payload as an Ethernet/IPv4/UDP datagram from 192.0.2.1 to 192.0.2.2:4739.
func pcapOfUDP(_ payloads: [[UInt8]], port: UInt16 = 4739) -> [UInt8] {
    var out: [UInt8] = []
    func le32(_ v: UInt32) { out += [UInt8(v & 0xff), UInt8(v >> 8 & 0xff), UInt8(v >> 16 & 0xff), UInt8(v >> 24)] }
    func le16(_ v: UInt16) { out += [UInt8(v & 0xff), UInt8(v >> 8)] }
    le32(0xa1b2c3d4); le16(2); le16(4); le32(0); le32(0); le32(65535); le32(1)
    for (n, payload) in payloads.enumerated() {
        var ip: [UInt8] = [0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2]
        let total = UInt16(20 + 8 + payload.count)
        ip[2] = UInt8(total >> 8); ip[3] = UInt8(total & 0xff)
        var sum: UInt32 = 0
        for i in stride(from: 0, to: 20, by: 2) { sum += UInt32(ip[i]) << 8 | UInt32(ip[i + 1]) }
        while sum > 0xffff { sum = (sum & 0xffff) + (sum >> 16) }
        let ck = ~UInt16(sum)
        ip[10] = UInt8(ck >> 8); ip[11] = UInt8(ck & 0xff)
        let udpLength = UInt16(8 + payload.count)
        let udp: [UInt8] = [0x10, 0x00, UInt8(port >> 8), UInt8(port & 0xff), UInt8(udpLength >> 8), UInt8(udpLength & 0xff), 0, 0]
        let frame: [UInt8] = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00] + ip + udp + payload
        le32(UInt32(1_700_000_000 + n)); le32(0); le32(UInt32(frame.count)); le32(UInt32(frame.count))
        out += frame
    }
    return out
}

func hex(_ bytes: [UInt8]) -> String {
    bytes.map { String(format: "%02x", $0) }.joined()
}

func temporaryDirectory(_ tag: String) throws -> String {
    let path = NSTemporaryDirectory() + "kiln-switch-\(tag)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

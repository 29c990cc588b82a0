/// IPFIX (RFC 7011) messages carrying flow records: a pure encoder from records to UDP payloads.
///
/// Every message starts with the two templates (IPv4 = 256, IPv6 = 257), as RFC 7011 §8.4 asks of UDP export
/// (templates are resent periodically; resending them in each message is the simple, always-correct choice).
/// Information elements are from the IANA registry: addresses 8/12 and 27/28, ports 7/11, protocol 4,
/// vlanId 58, ingressInterface 10, packetDeltaCount 2, octetDeltaCount 1, flowStart/EndMilliseconds 152/153.
public enum IPFIX {
    public static let version: UInt16 = 10
    public static let templateIPv4: UInt16 = 256
    public static let templateIPv6: UInt16 = 257
    /// Payload ceiling per message, under a 1500-byte MTU with IPv6 and UDP headers.
    public static let maxMessage = 1400

    static func fields(ipv6: Bool) -> [(id: UInt16, length: UInt16)] {
        (ipv6 ? [(27, 16), (28, 16)] : [(8, 4), (12, 4)])
            + [(7, 2), (11, 2), (4, 1), (58, 2), (10, 4), (2, 8), (1, 8), (152, 8), (153, 8)]
    }

    static func recordLength(ipv6: Bool) -> Int { fields(ipv6: ipv6).reduce(0) { $0 + Int($1.length) } }

    /// The template set (set id 2) defining both templates.
    static func templateSet() -> [UInt8] {
        var body: [UInt8] = []
        for (id, v6) in [(templateIPv4, false), (templateIPv6, true)] {
            let f = fields(ipv6: v6)
            body.put16(id); body.put16(UInt16(f.count))
            for field in f { body.put16(field.id); body.put16(field.length) }
        }
        var set: [UInt8] = []
        set.put16(2); set.put16(UInt16(4 + body.count))
        return set + body
    }

    static func appendRecord(_ r: FlowRecord, to out: inout [UInt8]) {
        let k = r.key
        if k.isIPv6 {
            out.put64(k.sourceHigh); out.put64(k.sourceLow); out.put64(k.destinationHigh); out.put64(k.destinationLow)
        } else {
            out.put32(UInt32(truncatingIfNeeded: k.sourceLow)); out.put32(UInt32(truncatingIfNeeded: k.destinationLow))
        }
        out.put16(k.sourcePort); out.put16(k.destinationPort); out.append(k.proto); out.put16(k.vlan)
        out.put32(UInt32(k.ingressPort)); out.put64(r.packets); out.put64(r.bytes)
        out.put64(r.startMilliseconds); out.put64(r.endMilliseconds)
    }

    /// Encodes `records` into as many messages as needed. `sequence` is the count of data records sent before
    /// (RFC 7011 §3.1); the returned value is the sequence after these messages.
    public static func encode(_ records: [FlowRecord], exportTime: UInt32, sequence: UInt32, domain: UInt32)
        -> (messages: [[UInt8]], sequence: UInt32)
    {
        let templates = templateSet()
        var messages: [[UInt8]] = []
        var seq = sequence
        var pending4 = records.filter { !$0.key.isIPv6 }[...]
        var pending6 = records.filter { $0.key.isIPv6 }[...]
        repeat {
            var body = templates
            var inMessage: UInt32 = 0
            for (v6, id) in [(false, templateIPv4), (true, templateIPv6)] {
                let size = recordLength(ipv6: v6)
                let room = (maxMessage - 16 - body.count - 4) / size
                let take = min(room, v6 ? pending6.count : pending4.count)
                guard take > 0 else { continue }
                var set: [UInt8] = []
                set.put16(id); set.put16(UInt16(4 + take * size))
                for _ in 0..<take {
                    if let r = v6 ? pending6.popFirst() : pending4.popFirst() { appendRecord(r, to: &set) }
                }
                body += set
                inMessage += UInt32(take)
            }
            var message: [UInt8] = []
            message.put16(version); message.put16(UInt16(16 + body.count))
            message.put32(exportTime); message.put32(seq); message.put32(domain)
            messages.append(message + body)
            seq &+= inMessage
        } while !pending4.isEmpty || !pending6.isEmpty
        return (messages, seq)
    }
}

extension Array where Element == UInt8 {
    @inline(__always) mutating func put16(_ v: UInt16) { append(UInt8(v >> 8)); append(UInt8(v & 0xff)) }
    @inline(__always) mutating func put32(_ v: UInt32) { put16(UInt16(v >> 16)); put16(UInt16(v & 0xffff)) }
    @inline(__always) mutating func put64(_ v: UInt64) { put32(UInt32(v >> 32)); put32(UInt32(v & 0xffff_ffff)) }
}

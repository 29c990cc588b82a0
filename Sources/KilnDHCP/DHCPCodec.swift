import KilnConfig

/// Why bytes were not a DHCP message. Every case says where; parsing never traps on hostile input.
public enum DHCPParseError: Error, Equatable, Sendable, CustomStringConvertible {
    case truncated(length: Int)
    case badOp(UInt8)
    case badHardwareAddressLength(UInt8)
    case missingMagicCookie
    case optionOverrun(code: UInt8, offset: Int)
    case badOptionLength(code: UInt8, length: Int)
    case badOverload(UInt8)
    case badMessageType(UInt8)
    case badClasslessRoute(offset: Int)

    public var description: String {
        switch self {
        case let .truncated(n): "message of \(n) bytes is shorter than the 240-byte BOOTP header and cookie"
        case let .badOp(op): "op \(op) is neither BOOTREQUEST (1) nor BOOTREPLY (2)"
        case let .badHardwareAddressLength(n): "hlen \(n) exceeds the 16-byte chaddr field"
        case .missingMagicCookie: "no DHCP magic cookie 99.130.83.99 at byte 236"
        case let .optionOverrun(code, offset): "option \(code) at byte \(offset) runs past the end of its field"
        case let .badOptionLength(code, length): "option \(code) has invalid length \(length)"
        case let .badOverload(v): "option 52 (overload) has invalid value \(v)"
        case let .badMessageType(v): "option 53 has unknown message type \(v)"
        case let .badClasslessRoute(offset): "option 121 is malformed at byte \(offset) of its value (RFC 3442)"
        }
    }
}

/// Pure encoder and decoder of DHCP messages (RFC 2131 §2, RFC 2132, RFC 3396 long options, RFC 3442).
public enum DHCPCodec {
    public static let magicCookie: [UInt8] = [99, 130, 83, 99]
    static let headerLength = 236
    /// RFC 1542 §3.4: BOOTP relay agents and old clients expect at least 300 bytes.
    public static let minimumLength = 300

    // MARK: Parsing

    private struct Segment { var code: UInt8; var start: Int; var count: Int }

    /// Decodes one message. Throws `DHCPParseError` for anything malformed; never reads out of bounds.
    public static func parse(_ bytes: [UInt8]) throws(DHCPParseError) -> DHCPPacket {
        let n = bytes.count
        guard n >= headerLength + 4 else { throw .truncated(length: n) }
        var p = DHCPPacket()
        p.op = bytes[0]
        guard p.op == 1 || p.op == 2 else { throw .badOp(p.op) }
        p.htype = bytes[1]; p.hlen = bytes[2]; p.hops = bytes[3]
        guard p.hlen <= 16 else { throw .badHardwareAddressLength(p.hlen) }
        p.xid = be32(bytes, 4)
        p.secs = UInt16(bytes[8]) << 8 | UInt16(bytes[9])
        p.flags = UInt16(bytes[10]) << 8 | UInt16(bytes[11])
        p.ciaddr = IPv4Address(be32(bytes, 12)); p.yiaddr = IPv4Address(be32(bytes, 16))
        p.siaddr = IPv4Address(be32(bytes, 20)); p.giaddr = IPv4Address(be32(bytes, 24))
        p.chaddr = Array(bytes[28..<44])
        guard bytes[236] == 99, bytes[237] == 130, bytes[238] == 83, bytes[239] == 99 else { throw .missingMagicCookie }

        var segments: [Segment] = []
        segments.reserveCapacity(16)
        try scan(bytes, 240..<n, into: &segments, allowOverload: true)
        var overload: UInt8 = 0
        if let s = segments.last(where: { $0.code == DHCPOptionCode.overload }) {
            guard s.count == 1, (1...3).contains(bytes[s.start]) else {
                throw s.count == 1 ? .badOverload(bytes[s.start]) : .badOptionLength(code: 52, length: s.count)
            }
            overload = bytes[s.start]
        }
        // RFC 2131 §4.1: options field first, then `file`, then `sname`.
        if overload & 1 != 0 { try scan(bytes, 108..<236, into: &segments, allowOverload: false) } else { p.file = Array(bytes[108..<236]) }
        if overload & 2 != 0 { try scan(bytes, 44..<108, into: &segments, allowOverload: false) } else { p.sname = Array(bytes[44..<108]) }

        var seen = (UInt64(0), UInt64(0), UInt64(0), UInt64(0)), repeated = seen
        for s in segments {
            if testBit(seen, s.code) { setBit(&repeated, s.code) } else { setBit(&seen, s.code) }
        }
        var done = (UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        for s in segments where !testBit(done, s.code) {
            setBit(&done, s.code)
            let value: ArraySlice<UInt8>
            if testBit(repeated, s.code) {
                var joined: [UInt8] = []
                for t in segments where t.code == s.code { joined += bytes[t.start..<(t.start + t.count)] }
                value = joined[...]
            } else {
                value = bytes[s.start..<(s.start + s.count)]
            }
            try decodeOption(s.code, value, into: &p)
        }
        return p
    }

    private static func scan(_ b: [UInt8], _ range: Range<Int>, into out: inout [Segment], allowOverload: Bool) throws(DHCPParseError) {
        var i = range.lowerBound
        while i < range.upperBound {
            let code = b[i]
            if code == DHCPOptionCode.pad { i += 1; continue }
            if code == DHCPOptionCode.end { return }
            guard i + 1 < range.upperBound else { throw .optionOverrun(code: code, offset: i) }
            let len = Int(b[i + 1])
            guard i + 2 + len <= range.upperBound else { throw .optionOverrun(code: code, offset: i) }
            if code != DHCPOptionCode.overload || allowOverload { out.append(Segment(code: code, start: i + 2, count: len)) }
            i += 2 + len
        }
        // A missing END option is tolerated: the field's end ends the options.
    }

    private static func decodeOption(_ code: UInt8, _ v: ArraySlice<UInt8>, into p: inout DHCPPacket) throws(DHCPParseError) {
        func addr() throws(DHCPParseError) -> IPv4Address {
            guard v.count == 4 else { throw .badOptionLength(code: code, length: v.count) }
            return IPv4Address(be32(v, v.startIndex))
        }
        func addrs() throws(DHCPParseError) -> [IPv4Address] {
            guard v.count >= 4, v.count % 4 == 0 else { throw .badOptionLength(code: code, length: v.count) }
            return stride(from: v.startIndex, to: v.endIndex, by: 4).map { IPv4Address(be32(v, $0)) }
        }
        func u32() throws(DHCPParseError) -> UInt32 {
            guard v.count == 4 else { throw .badOptionLength(code: code, length: v.count) }
            return be32(v, v.startIndex)
        }
        func u16(min: UInt16) throws(DHCPParseError) -> UInt16 {
            guard v.count == 2 else { throw .badOptionLength(code: code, length: v.count) }
            let x = UInt16(v[v.startIndex]) << 8 | UInt16(v[v.startIndex + 1])
            guard x >= min else { throw .badOptionLength(code: code, length: Int(x)) }
            return x
        }
        func text() throws(DHCPParseError) -> String {
            guard !v.isEmpty else { throw .badOptionLength(code: code, length: 0) }
            let trimmed = v.last == 0 ? v.dropLast() : v   // some clients NUL-terminate
            return String(decoding: trimmed, as: UTF8.self)
        }
        switch code {
        case DHCPOptionCode.messageType:
            guard v.count == 1 else { throw .badOptionLength(code: code, length: v.count) }
            guard let t = DHCPMessageType(rawValue: v[v.startIndex]) else { throw .badMessageType(v[v.startIndex]) }
            p.messageType = t
        case DHCPOptionCode.subnetMask: p.subnetMask = try addr()
        case DHCPOptionCode.router: p.routers = try addrs()
        case DHCPOptionCode.dnsServers: p.dnsServers = try addrs()
        case DHCPOptionCode.hostname: p.hostname = try text()
        case DHCPOptionCode.domainName: p.domainName = try text()
        case DHCPOptionCode.interfaceMTU: p.interfaceMTU = try u16(min: 68)
        case DHCPOptionCode.broadcastAddress: p.broadcastAddress = try addr()
        case DHCPOptionCode.requestedAddress: p.requestedAddress = try addr()
        case DHCPOptionCode.leaseTime: p.leaseTime = try u32()
        case DHCPOptionCode.overload: break
        case DHCPOptionCode.serverIdentifier: p.serverIdentifier = try addr()
        case DHCPOptionCode.parameterRequestList:
            guard !v.isEmpty else { throw .badOptionLength(code: code, length: 0) }
            p.parameterRequestList = Array(v)
        case DHCPOptionCode.message: p.message = try text()
        case DHCPOptionCode.maxMessageSize: p.maxMessageSize = try u16(min: 576)
        case DHCPOptionCode.renewalTime: p.renewalTime = try u32()
        case DHCPOptionCode.rebindingTime: p.rebindingTime = try u32()
        case DHCPOptionCode.clientIdentifier:
            guard v.count >= 2 else { throw .badOptionLength(code: code, length: v.count) }
            p.clientIdentifier = Array(v)
        case DHCPOptionCode.classlessStaticRoutes: p.classlessRoutes = try decodeRoutes(v)
        default: p.otherOptions.append(DHCPRawOption(code: code, value: Array(v)))
        }
    }

    /// RFC 3442 §3: width, the significant octets of the destination, then the router.
    static func decodeRoutes(_ v: ArraySlice<UInt8>) throws(DHCPParseError) -> [DHCPClasslessRoute] {
        guard v.count >= 5 else { throw .badOptionLength(code: DHCPOptionCode.classlessStaticRoutes, length: v.count) }
        var out: [DHCPClasslessRoute] = []
        var i = v.startIndex
        while i < v.endIndex {
            let width = Int(v[i])
            guard width <= 32 else { throw .badClasslessRoute(offset: i - v.startIndex) }
            let significant = (width + 7) / 8
            guard i + 1 + significant + 4 <= v.endIndex else { throw .badClasslessRoute(offset: i - v.startIndex) }
            var dest: UInt32 = 0
            for k in 0..<4 { dest = dest << 8 | (k < significant ? UInt32(v[i + 1 + k]) : 0) }
            let mask: UInt32 = width == 0 ? 0 : ~UInt32(0) << (32 - width)
            guard dest & ~mask == 0 else { throw .badClasslessRoute(offset: i - v.startIndex) }
            let router = be32(v, i + 1 + significant)
            out.append(DHCPClasslessRoute(destination: IPv4Address(dest), prefixLength: width, router: IPv4Address(router)))
            i += 1 + significant + 4
        }
        return out
    }

    static func encodeRoutes(_ routes: [DHCPClasslessRoute]) -> [UInt8] {
        var out: [UInt8] = []
        for r in routes {
            let width = max(0, min(32, r.prefixLength))
            out.append(UInt8(width))
            out += r.destination.bytes.prefix((width + 7) / 8)
            out += r.router.bytes
        }
        return out
    }

    // MARK: Serialising

    /// Encodes a message: header, cookie, options in a fixed order, END, padded to 300 bytes.
    /// Options longer than 255 bytes are split into consecutive instances (RFC 3396).
    public static func serialize(_ p: DHCPPacket) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(576)
        out += [p.op, p.htype, p.hlen, p.hops]
        put32(&out, p.xid)
        out += [UInt8(p.secs >> 8), UInt8(p.secs & 0xff), UInt8(p.flags >> 8), UInt8(p.flags & 0xff)]
        for a in [p.ciaddr, p.yiaddr, p.siaddr, p.giaddr] { put32(&out, a.value) }
        out += fixed(p.chaddr, 16)
        out += fixed(p.sname, 64)
        out += fixed(p.file, 128)
        out += magicCookie
        func opt(_ code: UInt8, _ value: [UInt8]) {
            var rest = value[...]
            repeat {
                let chunk = rest.prefix(255)
                out.append(code); out.append(UInt8(chunk.count)); out += chunk
                rest = rest.dropFirst(chunk.count)
            } while !rest.isEmpty
        }
        func addrs(_ list: [IPv4Address]) -> [UInt8] { list.flatMap(\.bytes) }
        func b32(_ x: UInt32) -> [UInt8] { [UInt8(x >> 24), UInt8(x >> 16 & 0xff), UInt8(x >> 8 & 0xff), UInt8(x & 0xff)] }
        if let t = p.messageType { opt(DHCPOptionCode.messageType, [t.rawValue]) }
        if let a = p.serverIdentifier { opt(DHCPOptionCode.serverIdentifier, a.bytes) }
        if let a = p.requestedAddress { opt(DHCPOptionCode.requestedAddress, a.bytes) }
        if let id = p.clientIdentifier { opt(DHCPOptionCode.clientIdentifier, id) }
        if let l = p.parameterRequestList { opt(DHCPOptionCode.parameterRequestList, l) }
        if let m = p.maxMessageSize { opt(DHCPOptionCode.maxMessageSize, [UInt8(m >> 8), UInt8(m & 0xff)]) }
        if let x = p.leaseTime { opt(DHCPOptionCode.leaseTime, b32(x)) }
        if let x = p.renewalTime { opt(DHCPOptionCode.renewalTime, b32(x)) }
        if let x = p.rebindingTime { opt(DHCPOptionCode.rebindingTime, b32(x)) }
        if let a = p.subnetMask { opt(DHCPOptionCode.subnetMask, a.bytes) }
        if !p.routers.isEmpty { opt(DHCPOptionCode.router, addrs(p.routers)) }
        if !p.dnsServers.isEmpty { opt(DHCPOptionCode.dnsServers, addrs(p.dnsServers)) }
        if let s = p.hostname, !s.isEmpty { opt(DHCPOptionCode.hostname, Array(s.utf8)) }
        if let s = p.domainName, !s.isEmpty { opt(DHCPOptionCode.domainName, Array(s.utf8)) }
        if let m = p.interfaceMTU { opt(DHCPOptionCode.interfaceMTU, [UInt8(m >> 8), UInt8(m & 0xff)]) }
        if let a = p.broadcastAddress { opt(DHCPOptionCode.broadcastAddress, a.bytes) }
        if let r = p.classlessRoutes, !r.isEmpty { opt(DHCPOptionCode.classlessStaticRoutes, encodeRoutes(r)) }
        if let s = p.message, !s.isEmpty { opt(DHCPOptionCode.message, Array(s.utf8)) }
        for o in p.otherOptions where o.code != 0 && o.code != 255 && o.code != 52 { opt(o.code, o.value) }
        out.append(DHCPOptionCode.end)
        if out.count < minimumLength { out += repeatElement(0, count: minimumLength - out.count) }
        return out
    }

    private static func fixed(_ b: [UInt8], _ n: Int) -> [UInt8] {
        b.count >= n ? Array(b.prefix(n)) : b + Array(repeating: 0, count: n - b.count)
    }
    private static func put32(_ out: inout [UInt8], _ x: UInt32) {
        out += [UInt8(x >> 24), UInt8(x >> 16 & 0xff), UInt8(x >> 8 & 0xff), UInt8(x & 0xff)]
    }
}

@inline(__always) func be32<C: RandomAccessCollection>(_ b: C, _ i: C.Index) -> UInt32 where C.Element == UInt8, C.Index == Int {
    UInt32(b[i]) << 24 | UInt32(b[i + 1]) << 16 | UInt32(b[i + 2]) << 8 | UInt32(b[i + 3])
}

private typealias Bits = (UInt64, UInt64, UInt64, UInt64)
@inline(__always) private func testBit(_ s: Bits, _ c: UInt8) -> Bool {
    let w = c >> 6, m = UInt64(1) << UInt64(c & 63)
    switch w { case 0: return s.0 & m != 0; case 1: return s.1 & m != 0; case 2: return s.2 & m != 0; default: return s.3 & m != 0 }
}
@inline(__always) private func setBit(_ s: inout Bits, _ c: UInt8) {
    let m = UInt64(1) << UInt64(c & 63)
    switch c >> 6 { case 0: s.0 |= m; case 1: s.1 |= m; case 2: s.2 |= m; default: s.3 |= m }
}

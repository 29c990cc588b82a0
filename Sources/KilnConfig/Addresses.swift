/// Why a textual network value was rejected; the message says what was expected.
public struct ValueError: Error, CustomStringConvertible, Equatable, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// An IPv4 address, stored in host order.
public struct IPv4Address: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var value: UInt32
    public init(_ value: UInt32) { self.value = value }

    public init(parsing text: Substring) throws(ValueError) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { throw ValueError("'\(text)' is not an IPv4 address (expected four dotted numbers)") }
        var v: UInt32 = 0
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy(\.isASCIIDigit), let octet = UInt8(part),
                  part.count == 1 || part.first != "0"
            else { throw ValueError("'\(text)' is not an IPv4 address (bad octet '\(part)')") }
            v = v << 8 | UInt32(octet)
        }
        value = v
    }

    public init(_ text: String) throws(ValueError) { try self.init(parsing: Substring(text)) }

    public var bytes: [UInt8] { [UInt8(value >> 24), UInt8(value >> 16 & 0xff), UInt8(value >> 8 & 0xff), UInt8(value & 0xff)] }
    public var description: String { bytes.map(String.init).joined(separator: ".") }
    public static func < (a: IPv4Address, b: IPv4Address) -> Bool { a.value < b.value }
}

/// An IPv6 address as 16 bytes in network order. Printed in RFC 5952 canonical form.
public struct IPv6Address: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var bytes: [UInt8]
    public init(bytes: [UInt8]) { precondition(bytes.count == 16); self.bytes = bytes }

    public init(parsing text: Substring) throws(ValueError) {
        let bad = ValueError("'\(text)' is not an IPv6 address")
        var head: [UInt16] = [], tail: [UInt16] = []
        var sawGap = false
        let halves = text.split(separator: "::", maxSplits: 1, omittingEmptySubsequences: false)
        guard text.contains(":"), halves.count <= 2 else { throw bad }
        if halves.count == 2 { sawGap = true; if halves[1].contains("::") { throw bad } }
        func groups(_ s: Substring, allowV4Tail: Bool) throws(ValueError) -> [UInt16] {
            if s.isEmpty { return [] }
            var out: [UInt16] = []
            let fields = s.split(separator: ":", omittingEmptySubsequences: false)
            for (i, f) in fields.enumerated() {
                if allowV4Tail, i == fields.count - 1, f.contains(".") {
                    let v4 = try IPv4Address(parsing: f)
                    out.append(UInt16(v4.value >> 16)); out.append(UInt16(v4.value & 0xffff))
                } else {
                    guard (1...4).contains(f.count), let g = UInt16(f, radix: 16) else { throw bad }
                    out.append(g)
                }
            }
            return out
        }
        head = try groups(halves[0], allowV4Tail: !sawGap)
        if sawGap { tail = try groups(halves[1], allowV4Tail: true) }
        let total = head.count + tail.count
        guard sawGap ? total <= 7 : total == 8 else { throw bad }
        let all = head + Array(repeating: 0, count: 8 - total) + tail
        bytes = all.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xff)] }
    }

    public init(_ text: String) throws(ValueError) { try self.init(parsing: Substring(text)) }

    public var description: String {
        let groups = (0..<8).map { UInt16(bytes[2 * $0]) << 8 | UInt16(bytes[2 * $0 + 1]) }
        var bestStart = -1, bestLen = 0, i = 0
        while i < 8 {
            if groups[i] == 0 {
                var j = i
                while j < 8, groups[j] == 0 { j += 1 }
                if j - i > bestLen, j - i >= 2 { bestStart = i; bestLen = j - i }
                i = j
            } else { i += 1 }
        }
        func hex(_ r: Range<Int>) -> String { r.map { String(groups[$0], radix: 16) }.joined(separator: ":") }
        if bestStart < 0 { return hex(0..<8) }
        return hex(0..<bestStart) + "::" + hex((bestStart + bestLen)..<8)
    }

    public static func < (a: IPv6Address, b: IPv6Address) -> Bool { a.bytes.lexicographicallyPrecedes(b.bytes) }
}

/// An IPv4 or IPv6 address.
public enum IPAddress: Hashable, Comparable, Sendable, CustomStringConvertible, Codable {
    case v4(IPv4Address)
    case v6(IPv6Address)

    public init(_ text: String) throws(ValueError) {
        if text.contains(":") { self = .v6(try IPv6Address(text)) } else { self = .v4(try IPv4Address(text)) }
    }
    public var bytes: [UInt8] {
        switch self { case let .v4(a): return a.bytes; case let .v6(a): return a.bytes }
    }
    public var isV4: Bool { if case .v4 = self { return true } else { return false } }
    public var bitWidth: Int { isV4 ? 32 : 128 }
    public var description: String {
        switch self { case let .v4(a): return a.description; case let .v6(a): return a.description }
    }
    public init(from decoder: Decoder) throws { self = try decodeText(decoder) { t throws(ValueError) in try IPAddress(t) } }
    public func encode(to encoder: Encoder) throws { var c = encoder.singleValueContainer(); try c.encode(description) }
}

/// An address with a prefix length, e.g. `198.51.100.2/24` on an interface or `10.0.0.0/8` as a route.
/// Host bits may be set (an interface address); `network` clears them.
public struct CIDR: Hashable, Comparable, Sendable, CustomStringConvertible, Codable {
    public var address: IPAddress
    public var prefixLength: Int

    public init(address: IPAddress, prefixLength: Int) throws(ValueError) {
        guard (0...address.bitWidth).contains(prefixLength) else {
            throw ValueError("prefix length /\(prefixLength) is out of range for \(address) (0...\(address.bitWidth))")
        }
        self.address = address
        self.prefixLength = prefixLength
    }

    /// Parses `a.b.c.d/n` or `x::y/n`; a bare address means a host route (/32 or /128).
    public init(_ text: String) throws(ValueError) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2 else { throw ValueError("'\(text)' is not an address/prefix (CIDR)") }
        let address: IPAddress
        do { address = try IPAddress(String(parts[0])) } catch { throw ValueError("'\(text)' is not a CIDR: \(error.message)") }
        var length = address.bitWidth
        if parts.count == 2 {
            guard let n = Int(parts[1]), parts[1].allSatisfy(\.isASCIIDigit) else {
                throw ValueError("'\(text)' has a bad prefix length '\(parts[1])'")
            }
            length = n
        }
        try self.init(address: address, prefixLength: length)
    }

    /// The address with host bits cleared.
    public var network: IPAddress {
        var b = address.bytes
        for i in 0..<b.count {
            let keep = max(0, min(8, prefixLength - i * 8))
            b[i] &= keep == 0 ? 0 : UInt8(truncatingIfNeeded: 0xff << (8 - keep))
        }
        return address.isV4 ? .v4(IPv4Address(b.reduce(0) { $0 << 8 | UInt32($1) })) : .v6(IPv6Address(bytes: b))
    }

    public var isNetwork: Bool { network == address }

    public func contains(_ other: IPAddress) -> Bool {
        guard other.isV4 == address.isV4 else { return false }
        return (try? CIDR(address: other, prefixLength: prefixLength))?.network == network
    }

    public var description: String { "\(address)/\(prefixLength)" }
    public static func < (a: CIDR, b: CIDR) -> Bool { (a.address, a.prefixLength) < (b.address, b.prefixLength) }
    public init(from decoder: Decoder) throws { self = try decodeText(decoder) { t throws(ValueError) in try CIDR(t) } }
    public func encode(to encoder: Encoder) throws { var c = encoder.singleValueContainer(); try c.encode(description) }
}

/// An Ethernet MAC address, `52:54:00:12:34:56`.
public struct MACAddress: Hashable, Sendable, CustomStringConvertible, Codable {
    public var bytes: [UInt8]
    public init(bytes: [UInt8]) { precondition(bytes.count == 6); self.bytes = bytes }
    public init(_ text: String) throws(ValueError) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 6 else { throw ValueError("'\(text)' is not a MAC address (expected six hex pairs like 52:54:00:12:34:56)") }
        var out: [UInt8] = []
        for p in parts {
            guard p.count == 2, let b = UInt8(p, radix: 16) else { throw ValueError("'\(text)' is not a MAC address (bad pair '\(p)')") }
            out.append(b)
        }
        if out[0] & 1 == 1 { throw ValueError("'\(text)' is a multicast MAC address; an interface needs a unicast one") }
        bytes = out
    }
    public var description: String {
        bytes.map { let h = String($0, radix: 16); return h.count == 1 ? "0" + h : h }.joined(separator: ":")
    }
    public init(from decoder: Decoder) throws { self = try decodeText(decoder) { t throws(ValueError) in try MACAddress(t) } }
    public func encode(to encoder: Encoder) throws { var c = encoder.singleValueContainer(); try c.encode(description) }
}

/// A Linux interface name: 1–15 bytes, no '/', ':' or whitespace (IFNAMSIZ is 16 with the NUL).
public struct InterfaceName: Hashable, Comparable, Sendable, CustomStringConvertible, Codable {
    public var value: String
    public init(_ text: String) throws(ValueError) {
        guard !text.isEmpty, text.utf8.count <= 15 else {
            throw ValueError("interface name '\(text)' must be 1 to 15 characters")
        }
        guard text != ".", text != "..", !text.contains(where: { $0 == "/" || $0 == ":" || $0.isWhitespace }) else {
            throw ValueError("interface name '\(text)' may not contain '/', ':' or spaces")
        }
        value = text
    }
    public var description: String { value }
    public static func < (a: InterfaceName, b: InterfaceName) -> Bool { a.value < b.value }
    public init(from decoder: Decoder) throws { self = try decodeText(decoder) { t throws(ValueError) in try InterfaceName(t) } }
    public func encode(to encoder: Encoder) throws { var c = encoder.singleValueContainer(); try c.encode(value) }
}

/// A TCP/UDP port or inclusive range, `22` or `8000-8099`.
public struct PortRange: Hashable, Comparable, Sendable, CustomStringConvertible, Codable {
    public var lower: UInt16
    public var upper: UInt16
    public init(_ lower: UInt16, _ upper: UInt16) throws(ValueError) {
        guard lower >= 1, lower <= upper else { throw ValueError("port range \(lower)-\(upper) is empty or starts at 0") }
        self.lower = lower; self.upper = upper
    }
    public init(_ text: String) throws(ValueError) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let lo = UInt16(parts[0]),
              let hi = parts.count == 2 ? UInt16(parts[1]) : lo
        else { throw ValueError("'\(text)' is not a port or port range (1-65535, e.g. 22 or 8000-8099)") }
        try self.init(lo, hi)
    }
    public var description: String { lower == upper ? "\(lower)" : "\(lower)-\(upper)" }
    public static func < (a: PortRange, b: PortRange) -> Bool { (a.lower, a.upper) < (b.lower, b.upper) }
    public func overlaps(_ o: PortRange) -> Bool { lower <= o.upper && o.lower <= upper }
    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let n = try? c.decode(Int.self) {
            guard let p = UInt16(exactly: n) else { throw DecodingError.dataCorruptedError(in: c, debugDescription: "port \(n) is out of range 1-65535") }
            do { try self.init(p, p) } catch { throw DecodingError.dataCorruptedError(in: c, debugDescription: error.message) }
        } else {
            self = try decodeText(decoder) { t throws(ValueError) in try PortRange(t) }
        }
    }
    public func encode(to encoder: Encoder) throws { var c = encoder.singleValueContainer(); try c.encode(description) }
}

/// Decodes a string and parses it, turning a parse failure into a DecodingError at this path.
public func decodeText<T>(_ decoder: Decoder, _ parse: (String) throws(ValueError) -> T) throws -> T {
    let c = try decoder.singleValueContainer()
    let text = try c.decode(String.self)
    do { return try parse(text) } catch { throw DecodingError.dataCorruptedError(in: c, debugDescription: error.message) }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}

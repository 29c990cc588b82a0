import KilnConfig

/// An inclusive range of IPv4 addresses written `10.10.0.100-10.10.0.199`.
public struct IPv4Range: Hashable, Sendable, Codable, CustomStringConvertible {
    public var lower: IPv4Address
    public var upper: IPv4Address

    public init(_ lower: IPv4Address, _ upper: IPv4Address) throws(ValueError) {
        guard lower <= upper else { throw ValueError("address range \(lower)-\(upper) is empty: the first address is above the last") }
        self.lower = lower; self.upper = upper
    }

    public init(_ text: String) throws(ValueError) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2 else { throw ValueError("'\(text)' is not an address range (expected first-last, e.g. 10.10.0.100-10.10.0.199)") }
        try self.init(try IPv4Address(parsing: parts[0]), try IPv4Address(parsing: parts[1]))
    }

    public var count: Int { Int(upper.value - lower.value) + 1 }
    public func contains(_ a: IPv4Address) -> Bool { lower <= a && a <= upper }
    public func overlaps(_ o: IPv4Range) -> Bool { lower <= o.upper && o.lower <= upper }
    public var description: String { "\(lower)-\(upper)" }
    public init(from decoder: Decoder) throws { self = try decodeText(decoder) { t throws(ValueError) in try IPv4Range(t) } }
    public func encode(to encoder: Encoder) throws { var c = encoder.singleValueContainer(); try c.encode(description) }
}

/// An IPv4 subnet derived from an interface address: the server's own address and its prefix.
public struct IPv4Subnet: Hashable, Sendable {
    public var address: IPv4Address
    public var prefixLength: Int
    public init?(_ cidr: CIDR) {
        guard case let .v4(a) = cidr.address else { return nil }
        address = a; prefixLength = cidr.prefixLength
    }
    public var mask: IPv4Address { IPv4Address(prefixLength == 0 ? 0 : ~UInt32(0) << (32 - prefixLength)) }
    public var network: IPv4Address { IPv4Address(address.value & mask.value) }
    public var broadcast: IPv4Address { IPv4Address(network.value | ~mask.value) }
    public func contains(_ a: IPv4Address) -> Bool { a.value & mask.value == network.value }
    /// An address a host may hold: inside, and neither the network nor the broadcast address (below /31).
    public func isHostAddress(_ a: IPv4Address) -> Bool {
        contains(a) && (prefixLength >= 31 || (a != network && a != broadcast))
    }
}

extension KeyedDecodingContainer {
    func decodeV4(forKey key: Key) throws -> IPv4Address {
        let text = try decode(String.self, forKey: key)
        do { return try IPv4Address(text) } catch {
            throw DecodingError.dataCorruptedError(forKey: key, in: self, debugDescription: error.message)
        }
    }
    func decodeV4IfPresent(forKey key: Key) throws -> IPv4Address? {
        guard contains(key), try !decodeNil(forKey: key) else { return nil }
        return try decodeV4(forKey: key)
    }
    func decodeV4List(forKey key: Key) throws -> [IPv4Address] {
        guard contains(key), try !decodeNil(forKey: key) else { return [] }
        var list = try nestedUnkeyedContainer(forKey: key)
        var out: [IPv4Address] = []
        while !list.isAtEnd {
            let text = try list.decode(String.self)
            do { out.append(try IPv4Address(text)) } catch {
                throw DecodingError.dataCorrupted(.init(
                    codingPath: codingPath + [key, AnyCodingKey(intValue: out.count)], debugDescription: error.message))
            }
        }
        return out
    }
    func fail(_ key: Key, _ message: String) -> DecodingError {
        DecodingError.dataCorruptedError(forKey: key, in: self, debugDescription: message)
    }
}

/// Rejects keys a type does not know, naming the key and the ones it accepts (a misspelt `leas:` must not pass).
func rejectUnknownKeys(_ decoder: Decoder, allowed: [String], in what: String) throws {
    let c = try decoder.container(keyedBy: AnyCodingKey.self)
    for key in c.allKeys where !allowed.contains(key.stringValue) {
        throw DecodingError.dataCorrupted(.init(
            codingPath: decoder.codingPath + [key],
            debugDescription: "unknown key '\(key.stringValue)' in \(what); expected one of: \(allowed.joined(separator: ", "))"))
    }
}

/// True for a DNS domain name: dot-separated labels of letters, digits and '-', 1–63 bytes each, 253 in all.
func isDomainName(_ s: String) -> Bool {
    let u = Array(s.utf8)
    guard !u.isEmpty, u.count <= 253 else { return false }
    for label in u.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false) {
        guard (1...63).contains(label.count), label.first != UInt8(ascii: "-"), label.last != UInt8(ascii: "-") else { return false }
        for c in label {
            let ok = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c == UInt8(ascii: "-")
            if !ok { return false }
        }
    }
    return true
}

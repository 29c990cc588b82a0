import KilnConfig

/// A YAML mapping decoded in document order (interface order is meaningful: it is the NIC order).
public struct OrderedMap<Value: Decodable & Sendable>: Decodable, Sendable {
    public var entries: [(key: String, value: Value)]

    public init(_ entries: [(key: String, value: Value)] = []) { self.entries = entries }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: AnyCodingKey.self)
        entries = try c.allKeys.map { ($0.stringValue, try c.decode(Value.self, forKey: $0)) }
    }

    public var keys: [String] { entries.map(\.key) }
    public subscript(key: String) -> Value? { entries.first { $0.key == key }?.value }
}

/// A scalar kept as its text (sysctl values may be written as numbers or strings).
public struct ScalarText: Decodable, Sendable, Equatable {
    public var text: String
    public init(_ text: String) { self.text = text }
    public init(from decoder: Decoder) throws { text = try decoder.singleValueContainer().decode(String.self) }
}

/// Codable over `JSONValue`, without Foundation: the host encodes the guest config with it and
/// kiln-init decodes it, so both sides share one implementation.
public enum KilnJSON {
    public static func encode<T: Encodable>(_ value: T) throws -> JSONValue {
        let encoder = ValueEncoder(path: [])
        try value.encode(to: encoder)
        return encoder.storage.json
    }

    public static func decode<T: Decodable>(_ type: T.Type, from value: JSONValue) throws -> T {
        try T(from: ValueDecoder(value: value, path: []))
    }

    public static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        try decode(type, from: try JSONParser.parse(bytes))
    }
}

/// A plain coding key for paths and dynamic members.
public struct AnyCodingKey: CodingKey, Hashable, Sendable {
    public var stringValue: String
    public var intValue: Int?
    public init(stringValue: String) { self.stringValue = stringValue }
    public init(intValue: Int) { self.stringValue = String(intValue); self.intValue = intValue }
}

/// Renders a coding path the way a person writes it: `interfaces.lan.vlans[0]`.
public func describePath(_ path: [CodingKey]) -> String {
    var out = ""
    for key in path {
        if let i = key.intValue { out += "[\(i)]" } else { out += out.isEmpty ? key.stringValue : "." + key.stringValue }
    }
    return out.isEmpty ? "<root>" : out
}

// MARK: - Encoder

/// One value under construction. Containers hold their children by reference, so a nested container handed out
/// before its members are written still lands in its parent; `json` resolves the tree once encoding is done.
private final class Box {
    enum Node {
        case value(JSONValue)
        case object([(String, Box)])
        case array([Box])
    }
    var node: Node
    init(_ node: Node) { self.node = node }

    var json: JSONValue {
        switch node {
        case let .value(value): value
        case let .object(members): .object(members.map { ($0.0, $0.1.json) })
        case let .array(items): .array(items.map(\.json))
        }
    }

    /// Makes this box an object (keeping its members if it is one) and sets `key` to `child`.
    func set(_ key: String, _ child: Box) {
        guard case var .object(members) = node else { node = .object([(key, child)]); return }
        if let i = members.firstIndex(where: { $0.0 == key }) { members[i].1 = child } else { members.append((key, child)) }
        node = .object(members)
    }

    func append(_ child: Box) {
        guard case var .array(items) = node else { node = .array([child]); return }
        items.append(child)
        node = .array(items)
    }

    var count: Int {
        if case let .array(items) = node { return items.count }
        return 0
    }
}

private final class ValueEncoder: Encoder {
    let codingPath: [CodingKey]
    let userInfo: [CodingUserInfoKey: Any] = [:]
    let storage: Box
    init(path: [CodingKey], storage: Box = Box(.value(.null))) { codingPath = path; self.storage = storage }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        if case .object = storage.node {} else { storage.node = .object([]) }
        return KeyedEncodingContainer(KeyedEncoder<Key>(box: storage, path: codingPath))
    }
    func unkeyedContainer() -> UnkeyedEncodingContainer {
        if case .array = storage.node {} else { storage.node = .array([]) }
        return UnkeyedEncoder(box: storage, path: codingPath)
    }
    func singleValueContainer() -> SingleValueEncodingContainer { SingleEncoder(box: storage, path: codingPath) }
}

private func encodeValue<T: Encodable>(_ value: T, path: [CodingKey]) throws -> JSONValue {
    switch value {
    case let v as String: return .string(v)
    case let v as Bool: return .bool(v)
    case let v as Int: return .int(Int64(v))
    case let v as Int64: return .int(v)
    case let v as UInt16: return .int(Int64(v))
    case let v as UInt32: return .int(Int64(v))
    case let v as UInt64: return .int(Int64(clamping: v))
    case let v as UInt8: return .int(Int64(v))
    case let v as Double: return .double(v)
    case let v as JSONValue: return v
    default:
        let encoder = ValueEncoder(path: path)
        try value.encode(to: encoder)
        return encoder.storage.json
    }
}

private struct KeyedEncoder<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let box: Box
    let codingPath: [CodingKey]
    init(box: Box, path: [CodingKey]) { self.box = box; codingPath = path }

    mutating func encodeNil(forKey key: Key) throws { box.set(key.stringValue, Box(.value(.null))) }
    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        box.set(key.stringValue, Box(.value(try encodeValue(value, path: codingPath + [key]))))
    }
    mutating func encodeIfPresent<T: Encodable>(_ value: T?, forKey key: Key) throws {
        guard let value else { return }
        try encode(value, forKey: key)
    }
    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
        superEncoder(forKey: key).container(keyedBy: keyType)
    }
    mutating func nestedUnkeyedContainer(forKey key: Key) -> UnkeyedEncodingContainer {
        superEncoder(forKey: key).unkeyedContainer()
    }
    mutating func superEncoder() -> Encoder { superEncoder(forKey: AnyCodingKey(stringValue: "super")) }
    mutating func superEncoder(forKey key: Key) -> Encoder { superEncoder(forKey: key as CodingKey) }
    private func superEncoder(forKey key: CodingKey) -> Encoder {
        let child = Box(.value(.null))
        box.set(key.stringValue, child)
        return ValueEncoder(path: codingPath + [key], storage: child)
    }
}

private struct UnkeyedEncoder: UnkeyedEncodingContainer {
    let box: Box
    let codingPath: [CodingKey]
    init(box: Box, path: [CodingKey]) { self.box = box; codingPath = path }
    var count: Int { box.count }
    mutating func encodeNil() throws { box.append(Box(.value(.null))) }
    mutating func encode<T: Encodable>(_ value: T) throws {
        box.append(Box(.value(try encodeValue(value, path: codingPath + [AnyCodingKey(intValue: count)]))))
    }
    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        superEncoder().container(keyedBy: keyType)
    }
    mutating func nestedUnkeyedContainer() -> UnkeyedEncodingContainer {
        superEncoder().unkeyedContainer()
    }
    mutating func superEncoder() -> Encoder {
        let child = Box(.value(.null))
        let path = codingPath + [AnyCodingKey(intValue: count)]
        box.append(child)
        return ValueEncoder(path: path, storage: child)
    }
}

private struct SingleEncoder: SingleValueEncodingContainer {
    let box: Box
    let codingPath: [CodingKey]
    init(box: Box, path: [CodingKey]) { self.box = box; codingPath = path }
    mutating func encodeNil() throws { box.node = .value(.null) }
    mutating func encode<T: Encodable>(_ value: T) throws { box.node = .value(try encodeValue(value, path: codingPath)) }
}

// MARK: - Decoder

private struct ValueDecoder: Decoder {
    let value: JSONValue
    let codingPath: [CodingKey]
    let userInfo: [CodingUserInfoKey: Any] = [:]
    init(value: JSONValue, path: [CodingKey]) { self.value = value; codingPath = path }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case let .object(members) = value else { throw mismatch(codingPath, "an object", value) }
        return KeyedDecodingContainer(KeyedDecoder<Key>(members: members, path: codingPath))
    }
    func unkeyedContainer() throws -> UnkeyedDecodingContainer {
        guard case let .array(items) = value else { throw mismatch(codingPath, "an array", value) }
        return UnkeyedDecoder(items: items, path: codingPath)
    }
    func singleValueContainer() throws -> SingleValueDecodingContainer { SingleDecoder(value: value, codingPath: codingPath) }
}

private func mismatch(_ path: [CodingKey], _ expected: String, _ found: JSONValue) -> DecodingError {
    DecodingError.typeMismatch(Any.self, .init(codingPath: path, debugDescription: "expected \(expected), found \(kind(found))"))
}

private func kind(_ value: JSONValue) -> String {
    switch value {
    case .null: return "null"
    case .bool: return "a boolean"
    case .int, .double: return "a number"
    case .string: return "a string"
    case .array: return "an array"
    case .object: return "an object"
    }
}

private func decodeValue<T: Decodable>(_ type: T.Type, _ value: JSONValue, path: [CodingKey]) throws -> T {
    func integer<I: FixedWidthInteger>(_: I.Type) throws -> I {
        switch value {
        case let .int(i): if let v = I(exactly: i) { return v }
        case let .double(d): if let v = I(exactly: d) { return v }
        default: throw mismatch(path, "an integer", value)
        }
        throw DecodingError.dataCorrupted(.init(codingPath: path, debugDescription: "integer out of range for \(I.self)"))
    }
    switch type {
    case is String.Type:
        guard case let .string(s) = value else { throw mismatch(path, "a string", value) }
        return s as! T
    case is Bool.Type:
        guard case let .bool(b) = value else { throw mismatch(path, "a boolean", value) }
        return b as! T
    case is Int.Type: return try integer(Int.self) as! T
    case is Int64.Type: return try integer(Int64.self) as! T
    case is UInt8.Type: return try integer(UInt8.self) as! T
    case is UInt16.Type: return try integer(UInt16.self) as! T
    case is UInt32.Type: return try integer(UInt32.self) as! T
    case is UInt64.Type: return try integer(UInt64.self) as! T
    case is Double.Type:
        switch value {
        case let .int(i): return Double(i) as! T
        case let .double(d): return d as! T
        default: throw mismatch(path, "a number", value)
        }
    case is JSONValue.Type: return value as! T
    default: return try T(from: ValueDecoder(value: value, path: path))
    }
}

private struct KeyedDecoder<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let members: [(String, JSONValue)]
    let codingPath: [CodingKey]
    init(members: [(String, JSONValue)], path: [CodingKey]) { self.members = members; codingPath = path }

    var allKeys: [Key] { members.compactMap { Key(stringValue: $0.0) } }
    func contains(_ key: Key) -> Bool { members.contains { $0.0 == key.stringValue } }
    private func value(_ key: Key) throws -> JSONValue {
        guard let v = members.first(where: { $0.0 == key.stringValue })?.1 else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "missing '\(key.stringValue)'"))
        }
        return v
    }
    func decodeNil(forKey key: Key) throws -> Bool { try value(key) == .null }
    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        try decodeValue(type, try value(key), path: codingPath + [key])
    }
    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        guard let v = members.first(where: { $0.0 == key.stringValue })?.1, v != .null else { return nil }
        return try decodeValue(type, v, path: codingPath + [key])
    }
    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try ValueDecoder(value: try value(key), path: codingPath + [key]).container(keyedBy: type)
    }
    func nestedUnkeyedContainer(forKey key: Key) throws -> UnkeyedDecodingContainer {
        try ValueDecoder(value: try value(key), path: codingPath + [key]).unkeyedContainer()
    }
    func superDecoder() throws -> Decoder { ValueDecoder(value: .object(members), path: codingPath) }
    func superDecoder(forKey key: Key) throws -> Decoder { ValueDecoder(value: try value(key), path: codingPath + [key]) }
}

private struct UnkeyedDecoder: UnkeyedDecodingContainer {
    let items: [JSONValue]
    let codingPath: [CodingKey]
    var currentIndex = 0
    init(items: [JSONValue], path: [CodingKey]) { self.items = items; codingPath = path }

    var count: Int? { items.count }
    var isAtEnd: Bool { currentIndex >= items.count }
    private mutating func next() throws -> (JSONValue, [CodingKey]) {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(Any.self, .init(codingPath: codingPath, debugDescription: "array too short"))
        }
        defer { currentIndex += 1 }
        return (items[currentIndex], codingPath + [AnyCodingKey(intValue: currentIndex)])
    }
    mutating func decodeNil() throws -> Bool {
        if !isAtEnd, items[currentIndex] == .null { currentIndex += 1; return true }
        return false
    }
    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        let (v, path) = try next()
        return try decodeValue(type, v, path: path)
    }
    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        let (v, path) = try next()
        return try ValueDecoder(value: v, path: path).container(keyedBy: type)
    }
    mutating func nestedUnkeyedContainer() throws -> UnkeyedDecodingContainer {
        let (v, path) = try next()
        return try ValueDecoder(value: v, path: path).unkeyedContainer()
    }
    mutating func superDecoder() throws -> Decoder {
        let (v, path) = try next()
        return ValueDecoder(value: v, path: path)
    }
}

private struct SingleDecoder: SingleValueDecodingContainer {
    let value: JSONValue
    let codingPath: [CodingKey]
    func decodeNil() -> Bool { value == .null }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try decodeValue(type, value, path: codingPath) }
}

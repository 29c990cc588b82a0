import KilnConfig
import Yams

/// `Decoder` over a Yams node. Type errors say what was expected and what was found.
struct NodeDecoder: Decoder {
    let node: Node
    let codingPath: [CodingKey]
    let tracker: AccessTracker
    let userInfo: [CodingUserInfoKey: Any] = [:]

    init(node: Node, path: [CodingKey], tracker: AccessTracker) {
        self.node = NodeDecoder.resolve(node)
        codingPath = path
        self.tracker = tracker
    }

    static func resolve(_ node: Node) -> Node { node }

    static func child(of node: Node, key: CodingKey) -> (key: Node, value: Node)? {
        switch node {
        case let .mapping(m): return m.first { $0.key.string == key.stringValue }
        case let .sequence(s):
            guard let i = key.intValue, i >= 0, i < s.count else { return nil }
            let item = s[s.index(s.startIndex, offsetBy: i)]
            return (item, item)
        default: return nil
        }
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case let .mapping(mapping) = node else { throw mismatch(codingPath, "a mapping", node) }
        var seen = Set<String>()
        for (key, _) in mapping {
            guard let name = key.string, key.scalar != nil else {
                throw DecodingError.dataCorrupted(.init(codingPath: codingPath, debugDescription: "mapping keys must be plain scalars"))
            }
            guard seen.insert(name).inserted else {
                throw DecodingError.dataCorrupted(.init(codingPath: codingPath + [AnyCodingKey(stringValue: name)],
                                                        debugDescription: "duplicate key '\(name)'"))
            }
        }
        let id = tracker.register(mapping, path: codingPath)
        return KeyedDecodingContainer(NodeKeyed<Key>(mapping: mapping, path: codingPath, tracker: tracker, id: id))
    }

    func unkeyedContainer() throws -> UnkeyedDecodingContainer {
        guard case let .sequence(seq) = node else { throw mismatch(codingPath, "a list", node) }
        return NodeUnkeyed(items: Array(seq), path: codingPath, tracker: tracker)
    }

    func singleValueContainer() throws -> SingleValueDecodingContainer { NodeSingle(node: node, codingPath: codingPath, tracker: tracker) }
}

func mismatch(_ path: [CodingKey], _ expected: String, _ found: Node) -> DecodingError {
    DecodingError.typeMismatch(Any.self, .init(codingPath: path, debugDescription: "expected \(expected), found \(describe(found))"))
}

func describe(_ node: Node) -> String {
    switch node {
    case let .scalar(s): return s.string.isEmpty && s.style == .plain ? "nothing" : "'\(s.string)'"
    case .mapping: return "a mapping"
    case .sequence: return "a list"
    case .alias: return "an alias"
    }
}

/// Decodes a scalar leaf; containers go back through NodeDecoder.
func decodeNode<T: Decodable>(_ type: T.Type, _ node: Node, path: [CodingKey], tracker: AccessTracker) throws -> T {
    func scalar(_ expected: String) throws -> String {
        guard case let .scalar(s) = node else { throw mismatch(path, expected, node) }
        return s.string
    }
    func integer<I: FixedWidthInteger>(_: I.Type) throws -> I {
        let text = try scalar("an integer")
        guard let v = I(text) ?? (text.hasPrefix("0x") ? I(text.dropFirst(2), radix: 16) : nil) else {
            if Int64(text) != nil {
                throw DecodingError.dataCorrupted(.init(codingPath: path, debugDescription: "\(text) is out of range (\(I.min)...\(I.max))"))
            }
            throw mismatch(path, "an integer", node)
        }
        return v
    }
    func cast<V>(_ value: V) throws -> T {
        guard let t = value as? T else { throw mismatch(path, "\(T.self)", node) }
        return t
    }
    switch type {
    case is String.Type:
        return try cast(try scalar("a string"))
    case is Bool.Type:
        switch try scalar("true or false") {
        case "true": return try cast(true)
        case "false": return try cast(false)
        default: throw mismatch(path, "true or false", node)
        }
    case is Int.Type: return try cast(try integer(Int.self))
    case is Int64.Type: return try cast(try integer(Int64.self))
    case is UInt8.Type: return try cast(try integer(UInt8.self))
    case is UInt16.Type: return try cast(try integer(UInt16.self))
    case is UInt32.Type: return try cast(try integer(UInt32.self))
    case is Double.Type:
        guard let d = Double(try scalar("a number")), d.isFinite else { throw mismatch(path, "a number", node) }
        return try cast(d)
    default:
        return try T(from: NodeDecoder(node: node, path: path, tracker: tracker))
    }
}

struct NodeKeyed<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let mapping: Node.Mapping
    let codingPath: [CodingKey]
    let tracker: AccessTracker
    let id: Int

    init(mapping: Node.Mapping, path: [CodingKey], tracker: AccessTracker, id: Int) {
        self.mapping = mapping; codingPath = path; self.tracker = tracker; self.id = id
    }

    var allKeys: [Key] {
        tracker.entries[id].all = true
        return mapping.compactMap { $0.key.string.flatMap(Key.init(stringValue:)) }
    }

    private func lookup(_ key: Key) -> Node? {
        tracker.entries[id].asked.insert(key.stringValue)
        return mapping.first { $0.key.string == key.stringValue }?.value
    }

    private func require(_ key: Key) throws -> Node {
        guard let node = lookup(key) else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "missing '\(key.stringValue)'"))
        }
        return node
    }

    private static func isNull(_ node: Node) -> Bool {
        if case let .scalar(s) = node { return s.style == .plain && (s.string.isEmpty || s.string == "null" || s.string == "~") }
        return false
    }

    func contains(_ key: Key) -> Bool { lookup(key) != nil }
    func decodeNil(forKey key: Key) throws -> Bool { NodeKeyed.isNull(try require(key)) }
    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        try decodeNode(type, try require(key), path: codingPath + [key], tracker: tracker)
    }
    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        guard let node = lookup(key), !NodeKeyed.isNull(node) else { return nil }
        return try decodeNode(type, node, path: codingPath + [key], tracker: tracker)
    }
    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try NodeDecoder(node: try require(key), path: codingPath + [key], tracker: tracker).container(keyedBy: type)
    }
    func nestedUnkeyedContainer(forKey key: Key) throws -> UnkeyedDecodingContainer {
        try NodeDecoder(node: try require(key), path: codingPath + [key], tracker: tracker).unkeyedContainer()
    }
    func superDecoder() throws -> Decoder { NodeDecoder(node: .mapping(mapping), path: codingPath, tracker: tracker) }
    func superDecoder(forKey key: Key) throws -> Decoder {
        NodeDecoder(node: try require(key), path: codingPath + [key], tracker: tracker)
    }
}

struct NodeUnkeyed: UnkeyedDecodingContainer {
    let items: [Node]
    let codingPath: [CodingKey]
    let tracker: AccessTracker
    var currentIndex = 0

    init(items: [Node], path: [CodingKey], tracker: AccessTracker) { self.items = items; codingPath = path; self.tracker = tracker }

    var count: Int? { items.count }
    var isAtEnd: Bool { currentIndex >= items.count }

    private mutating func next() throws -> (Node, [CodingKey]) {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(Any.self, .init(codingPath: codingPath, debugDescription: "list too short"))
        }
        defer { currentIndex += 1 }
        return (items[currentIndex], codingPath + [AnyCodingKey(intValue: currentIndex)])
    }
    mutating func decodeNil() throws -> Bool { false }
    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        let (node, path) = try next()
        return try decodeNode(type, node, path: path, tracker: tracker)
    }
    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        let (node, path) = try next()
        return try NodeDecoder(node: node, path: path, tracker: tracker).container(keyedBy: type)
    }
    mutating func nestedUnkeyedContainer() throws -> UnkeyedDecodingContainer {
        let (node, path) = try next()
        return try NodeDecoder(node: node, path: path, tracker: tracker).unkeyedContainer()
    }
    mutating func superDecoder() throws -> Decoder {
        let (node, path) = try next()
        return NodeDecoder(node: node, path: path, tracker: tracker)
    }
}

struct NodeSingle: SingleValueDecodingContainer {
    let node: Node
    let codingPath: [CodingKey]
    let tracker: AccessTracker
    func decodeNil() -> Bool {
        if case let .scalar(s) = node { return s.style == .plain && (s.string.isEmpty || s.string == "null" || s.string == "~") }
        return false
    }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try decodeNode(type, node, path: codingPath, tracker: tracker) }
}

import KilnConfig
import Yams

/// Decodes Codable values from a YAML node tree and reports every problem at its `file:line:col`.
///
/// Unknown keys are errors (with a did-you-mean): after a type has decoded a mapping, any key it did not
/// ask for was not part of the schema. YAML scalars are text; numbers and booleans are parsed strictly
/// (YAML 1.2 core: `true`/`false`, not `yes`/`no`).
public struct ManifestDecoder {
    public var file: String
    public init(file: String) { self.file = file }

    /// Parses `text` and decodes a `T`. Throws `ManifestError`.
    public func decode<T: Decodable>(_ type: T.Type, from text: String) throws -> T {
        try decodeLocated(type, from: text).value
    }

    /// Decodes a `T` and keeps the node tree so later cross-field checks can point at the right line.
    public func decodeLocated<T: Decodable>(_ type: T.Type, from text: String) throws -> (value: T, locator: Locator) {
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: text) else {
                throw ManifestError(location: .init(file: file, line: 1, column: 1), path: "<root>", message: "the file is empty")
            }
            root = node
        } catch let error as YamlError {
            throw translate(error, text: text)
        }
        let tracker = AccessTracker()
        tracker.file = file
        do {
            let value = try T(from: NodeDecoder(node: root, path: [], tracker: tracker))
            if let unknown = tracker.firstUnknown() { throw unknown }
            return (value, Locator(file: file, root: root))
        } catch let error as DecodingError {
            // Only a missing key can be explained by a typo elsewhere. A value of the wrong type is the error
            // itself: the keys after it were never asked for, so they are not unknown.
            if case .keyNotFound = error, let typo = tracker.firstUnknown(nearMissing: error) { throw typo }
            throw locate(error, root: root)
        }
    }

    func location(_ mark: Mark?) -> SourceLocation {
        SourceLocation(file: file, line: mark?.line ?? 1, column: mark?.column ?? 1)
    }

    private func translate(_ error: YamlError, text: String) -> ManifestError {
        switch error {
        case let .duplicatedKeysInMapping(duplicates, context):
            if let found = DuplicateKeys.first(in: text) {
                return ManifestError(location: SourceLocation(file: file, line: found.line, column: found.column), path: found.path,
                                     message: "duplicate key '\(found.key)' (first at line \(found.firstLine), column \(found.firstColumn))")
            }
            let name = duplicates.sorted().first ?? "?"
            return ManifestError(location: location(context.mark), path: name, message: "duplicate key '\(name)'")
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _), let .composer(context, problem, mark, _):
            let ctx = context.map { " (\($0.text))" } ?? ""
            return ManifestError(location: location(mark), path: "<root>", message: "malformed YAML: \(problem)\(ctx)")
        default:
            return ManifestError(location: location(nil), path: "<root>", message: "malformed YAML: \(error)")
        }
    }

    /// Maps a DecodingError's coding path back to the node it concerns.
    private func locate(_ error: DecodingError, root: Node) -> ManifestError {
        let (context, message): (DecodingError.Context, String) = {
            switch error {
            case let .typeMismatch(_, c): return (c, c.debugDescription)
            case let .valueNotFound(_, c): return (c, c.debugDescription)
            case let .keyNotFound(key, c): return (c, "missing required key '\(key.stringValue)'")
            case let .dataCorrupted(c): return (c, c.debugDescription)
            @unknown default: return (DecodingError.Context(codingPath: [], debugDescription: ""), "\(error)")
            }
        }()
        var node = root
        for key in context.codingPath {
            guard let child = NodeDecoder.child(of: node, key: key) else { break }
            node = child.value
        }
        return ManifestError(location: location(node.mark), path: describePath(context.codingPath), message: message)
    }
}

/// Records which keys each decoded mapping was asked for, to find the ones nobody wanted.
final class AccessTracker {
    struct Entry { var mapping: Node.Mapping; var path: [CodingKey]; var asked: Set<String>; var all: Bool }
    var entries: [Entry] = []
    var file = ""

    func register(_ mapping: Node.Mapping, path: [CodingKey]) -> Int {
        entries.append(Entry(mapping: mapping, path: path, asked: [], all: false))
        return entries.count - 1
    }

    func unknownKeys() -> [(key: Node, path: [CodingKey], known: Set<String>)] {
        var out: [(Node, [CodingKey], Set<String>)] = []
        // A mapping decoded several times (e.g. probing) counts every key asked across decodes.
        var byPath: [String: (Entry, Set<String>, Bool)] = [:]
        for e in entries {
            let k = describePath(e.path)
            let prior = byPath[k]
            byPath[k] = (e, (prior?.1 ?? []).union(e.asked), (prior?.2 ?? false) || e.all)
        }
        for (_, (entry, asked, all)) in byPath where !all {
            for (key, _) in entry.mapping {
                if let name = key.string, !asked.contains(name) { out.append((key, entry.path, asked)) }
            }
        }
        return out.sorted { ($0.0.mark?.line ?? 0, $0.0.mark?.column ?? 0) < ($1.0.mark?.line ?? 0, $1.0.mark?.column ?? 0) }
    }

    func firstUnknown(nearMissing error: DecodingError? = nil) -> ManifestError? {
        let unknown = unknownKeys()
        if case let .keyNotFound(missing, context)? = error {
            // A required key is missing and an unknown key nearby looks like a typo of it: report the typo.
            let here = describePath(context.codingPath)
            if let typo = unknown.first(where: { describePath($0.path) == here && editDistance($0.key.string ?? "", missing.stringValue) <= typoBudget(missing.stringValue) }) {
                return unknownKeyError(for: typo, suggestion: missing.stringValue)
            }
            return nil
        }
        guard let first = unknown.first else { return nil }
        return unknownKeyError(for: first, suggestion: suggestion(for: first.key.string ?? "", among: first.known))
    }

    private func unknownKeyError(for item: (key: Node, path: [CodingKey], known: Set<String>), suggestion: String?) -> ManifestError {
        let name = item.key.string ?? "?"
        var message = "unknown key '\(name)'"
        if let suggestion { message += " (did you mean '\(suggestion)'?)" }
        else if !item.known.isEmpty { message += "; expected one of: \(item.known.sorted().joined(separator: ", "))" }
        let mark = item.key.mark
        return ManifestError(location: SourceLocation(file: file, line: mark?.line ?? 1, column: mark?.column ?? 1),
                             path: describePath(item.path + [AnyCodingKey(stringValue: name)]), message: message)
    }
}

/// Finds the source location of a setting by its path, for errors found after decoding.
public struct Locator {
    public let file: String
    let root: Node

    /// `path` like `["interfaces", "lan", "vlans", "10"]` or with integer indices for lists.
    public func location(_ path: [CodingKey]) -> SourceLocation {
        var node = root
        for key in path {
            guard let child = NodeDecoder.child(of: node, key: key) else { break }
            node = child.value
        }
        return SourceLocation(file: file, line: node.mark?.line ?? 1, column: node.mark?.column ?? 1)
    }

    /// A dotted path as other modules report it (`router.dhcp.lan.10.static[1].address`); keys may themselves
    /// contain dots (interface `lan.10`), so each step takes the longest key that matches.
    public func location(dotted path: String) -> SourceLocation {
        var node = root
        var rest = Substring(path)
        while !rest.isEmpty {
            if rest.hasPrefix(".") { rest = rest.dropFirst() }
            if rest.hasPrefix("["), let close = rest.firstIndex(of: "]"), let i = Int(rest[rest.index(after: rest.startIndex)..<close]),
               let child = NodeDecoder.child(of: node, key: AnyCodingKey(intValue: i)) {
                node = child.value
                rest = rest[rest.index(after: close)...]
                continue
            }
            guard case let .mapping(m) = node,
                  let (key, value) = m.compactMap({ k, v -> (String, Node)? in
                      guard let name = k.string, rest.hasPrefix(name) else { return nil }
                      let after = rest.dropFirst(name.count)
                      return after.isEmpty || after.hasPrefix(".") || after.hasPrefix("[") ? (name, v) : nil
                  }).max(by: { $0.0.count < $1.0.count })
            else { break }
            node = value
            rest = rest.dropFirst(key.count)
        }
        return SourceLocation(file: file, line: node.mark?.line ?? 1, column: node.mark?.column ?? 1)
    }

    public func error(_ path: [CodingKey], _ message: String) -> ManifestError {
        ManifestError(location: location(path), path: describePath(path), message: message)
    }
}

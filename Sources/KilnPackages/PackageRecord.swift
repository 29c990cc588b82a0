import Foundation

/// One alternative of a dependency field: `name[:arch] [(op version)]`. Kiln records the constraint but resolves
/// by picking the highest available version.
public struct Dependency: Sendable, Hashable, Codable, CustomStringConvertible {
    public var name: String
    /// The relation and version, e.g. `(">=", "2.36")`, if the field had one.
    public var relation: String?
    public var version: String?

    public init(name: String, relation: String? = nil, version: String? = nil) {
        self.name = name
        self.relation = relation
        self.version = version
    }

    public var description: String {
        guard let relation, let version else { return name }
        return "\(name) (\(relation) \(version))"
    }

    /// Parses a Depends-style field: comma-separated groups of `|`-separated alternatives. Architecture
    /// qualifiers (`:any`), architecture lists (`[amd64]`) and build profiles (`<!nocheck>`) are dropped.
    public static func parseField(_ field: Substring) -> [[Dependency]] {
        var groups: [[Dependency]] = []
        for group in field.split(separator: ",") {
            var alternatives: [Dependency] = []
            for alternative in group.split(separator: "|") {
                if let dependency = parseOne(alternative) { alternatives.append(dependency) }
            }
            if !alternatives.isEmpty { groups.append(alternatives) }
        }
        return groups
    }

    static func parseOne(_ text: Substring) -> Dependency? {
        var rest = text.drop(while: { $0 == " " || $0 == "\t" || $0 == "\n" })
        let nameEnd = rest.firstIndex(where: { $0 == " " || $0 == "(" || $0 == "[" || $0 == "<" || $0 == "\t" || $0 == "\n" })
            ?? rest.endIndex
        var name = rest[..<nameEnd]
        if let colon = name.firstIndex(of: ":") { name = name[..<colon] }
        guard !name.isEmpty else { return nil }
        rest = rest[nameEnd...]
        guard let open = rest.firstIndex(of: "("), let close = rest[open...].firstIndex(of: ")") else {
            return Dependency(name: String(name))
        }
        let inside = rest[rest.index(after: open)..<close]
        let opEnd = inside.firstIndex(where: { !"<>=".contains($0) && $0 != " " }) ?? inside.endIndex
        let relation = inside[..<opEnd].filter { $0 != " " }
        let version = inside[opEnd...].trimmingCharacters(in: .whitespaces)
        return Dependency(name: String(name), relation: relation.isEmpty ? nil : relation,
                          version: version.isEmpty ? nil : version)
    }
}

/// One binary package from a repository index, with where to fetch it and how to check it.
public struct PackageRecord: Sendable, Hashable, Codable {
    public var name: String
    public var version: String
    public var architecture: String
    /// The pool path relative to the repository base URI, e.g. `pool/main/l/linux/....deb`.
    public var filename: String
    public var size: Int
    public var sha256: String
    public var depends: [[Dependency]]
    public var preDepends: [[Dependency]]
    public var provides: [String]
    public var source: String?
    /// The base URI of the repository the record came from, and the suite whose index listed it.
    public var baseURI: String
    public var suite: String

    public init(name: String, version: String, architecture: String, filename: String, size: Int, sha256: String,
                depends: [[Dependency]] = [], preDepends: [[Dependency]] = [], provides: [String] = [],
                source: String? = nil, baseURI: String = "", suite: String = "") {
        self.name = name
        self.version = version
        self.architecture = architecture
        self.filename = filename
        self.size = size
        self.sha256 = sha256
        self.depends = depends
        self.preDepends = preDepends
        self.provides = provides
        self.source = source
        self.baseURI = baseURI
        self.suite = suite
    }

    /// The download URL: base URI joined with the pool filename.
    public var url: String { joinURL(baseURI, filename) }

    /// The lock-file form of this record.
    public var locked: LockedPackage {
        LockedPackage(name: name, version: version, architecture: architecture, filename: filename,
                      size: size, sha256: sha256, suite: suite)
    }
}

/// Joins a base URI and a relative path with exactly one slash.
func joinURL(_ base: String, _ path: String) -> String {
    let trimmedBase = base.hasSuffix("/") ? String(base.dropLast()) : base
    let trimmedPath = path.hasPrefix("/") ? String(path.dropFirst()) : path
    return trimmedBase + "/" + trimmedPath
}

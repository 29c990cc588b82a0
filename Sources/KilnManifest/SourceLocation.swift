import KilnConfig

/// A place in a manifest file, 1-based like compilers print it.
public struct SourceLocation: Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int
    public init(file: String, line: Int, column: Int) { self.file = file; self.line = line; self.column = column }
    public var description: String { "\(file):\(line):\(column)" }
}

/// A problem with a manifest: where it is, which setting, and what was expected.
public struct ManifestError: Error, CustomStringConvertible, Equatable, Sendable {
    public var location: SourceLocation
    /// The setting's path, e.g. `interfaces.lan.vlans.10.addresses[0]`.
    public var path: String
    public var message: String
    /// A warning is printed the same way and does not stop the build.
    public var isWarning = false
    public init(location: SourceLocation, path: String, message: String) {
        self.location = location; self.path = path; self.message = message
    }
    public var description: String { "\(location): \(isWarning ? "warning" : "error"): \(path == "<root>" ? "" : path + ": ")\(message)" }
}

/// Several manifest problems reported together, in file order.
public struct ManifestErrors: Error, CustomStringConvertible, Sendable {
    public var errors: [ManifestError]
    public init(errors: [ManifestError]) { self.errors = errors }
    public var description: String { errors.map(\.description).joined(separator: "\n") }
}

func editDistance(_ a: String, _ b: String) -> Int { NameSuggestion.distance(a, b) }

/// How far a typo may be from the word it stands for: one edit for short words, two from seven letters.
func typoBudget(_ word: String) -> Int { word.count >= 7 ? 2 : 1 }

/// The closest candidate within a small edit distance, for "did you mean 'x'?".
public func suggestion(for word: String, among candidates: some Sequence<String>) -> String? {
    NameSuggestion.closest(to: word, among: candidates, maxDistance: typoBudget)
}

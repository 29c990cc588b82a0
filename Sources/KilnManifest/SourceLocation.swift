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
    public init(location: SourceLocation, path: String, message: String) {
        self.location = location; self.path = path; self.message = message
    }
    public var description: String { "\(location): error: \(path == "<root>" ? "" : path + ": ")\(message)" }
}

/// Several manifest problems reported together, in file order.
public struct ManifestErrors: Error, CustomStringConvertible, Sendable {
    public var errors: [ManifestError]
    public init(errors: [ManifestError]) { self.errors = errors }
    public var description: String { errors.map(\.description).joined(separator: "\n") }
}

/// Edit distance for did-you-mean suggestions, counting a swap of two neighbours as one edit
/// (optimal string alignment), so `nmae` is one edit from `name`.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a.lowercased()), b = Array(b.lowercased())
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var d = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
    for i in 0...a.count { d[i][0] = i }
    for j in 0...b.count { d[0][j] = j }
    for i in 1...a.count {
        for j in 1...b.count {
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] { d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1) }
        }
    }
    return d[a.count][b.count]
}

/// How far a typo may be from the word it stands for: one edit for short words, two from seven letters.
func typoBudget(_ word: String) -> Int { word.count >= 7 ? 2 : 1 }

/// The closest candidate within a small edit distance, for "did you mean 'x'?".
public func suggestion(for word: String, among candidates: some Sequence<String>) -> String? {
    let scored = candidates.map { ($0, editDistance(word, $0)) }.filter { $0.1 <= typoBudget($0.0) }
    return scored.min { $0.1 < $1.1 || ($0.1 == $1.1 && $0.0 < $1.0) }?.0
}

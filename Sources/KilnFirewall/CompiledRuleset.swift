/// nftables ruleset text with a source map: for every line, the manifest setting it came from
/// (`firewall.rules[2]`, `firewall.sets.blocklist.elements[7]`), so an nft error on line N names the rule.
public struct CompiledRuleset: Sendable, Equatable {
    /// The ruleset, one libnftables transaction.
    public var text: String
    /// `origins[n - 1]` is the origin of line `n`; nil for structure (table, chain headers, braces).
    public var origins: [String?]

    public init(text: String, origins: [String?]) { self.text = text; self.origins = origins }

    /// The manifest setting behind 1-based line `line`, or nil for a structural line or one out of range.
    public func origin(ofLine line: Int) -> String? {
        guard line >= 1, line <= origins.count else { return nil }
        return origins[line - 1]
    }

    /// The text of 1-based line `line`.
    public func line(_ line: Int) -> Substring? {
        var n = 1
        var start = text.startIndex
        while n < line {
            guard let nl = text[start...].firstIndex(of: "\n") else { return nil }
            start = text.index(after: nl)
            n += 1
        }
        guard start < text.endIndex else { return nil }
        return text[start...].prefix { $0 != "\n" }
    }

    /// Fills `origin` in each diagnostic from this ruleset's source map.
    public func explain(_ error: NftError) -> NftError {
        var e = error
        for i in e.diagnostics.indices {
            if let line = e.diagnostics[i].line { e.diagnostics[i].origin = origin(ofLine: line) }
        }
        return e
    }
}

/// Builds ruleset text line by line, recording each line's origin.
struct RulesetWriter {
    private(set) var lines: [String] = []
    private(set) var origins: [String?] = []
    private var depth = 0
    let root: String

    init(root: String) { self.root = root }

    /// A line at the current depth; `origin` is relative to the root (`rules[2]`), nil for structure.
    mutating func line(_ text: String, _ origin: String? = nil) {
        lines.append(String(repeating: "\t", count: depth) + text)
        origins.append(origin.map { $0.isEmpty ? root : root + "." + $0 })
    }

    /// `header {` … `}` around `body`.
    mutating func block(_ header: String, _ origin: String? = nil, _ body: (inout RulesetWriter) -> Void) {
        line(header + " {", origin)
        depth += 1
        body(&self)
        depth -= 1
        line("}")
    }

    var ruleset: CompiledRuleset {
        CompiledRuleset(text: lines.joined(separator: "\n") + "\n", origins: origins)
    }
}

/// A string literal for nft: double-quoted, with characters nft cannot take in a quoted string removed.
func nftQuoted(_ s: String, limit: Int = 127) -> String {
    let clean = String(s.unicodeScalars.filter { $0 != "\"" && $0 != "\\" && $0.value >= 0x20 && $0.value < 0x7f }.prefix(limit))
    return "\"" + clean + "\""
}

import Foundation

/// One repository entry from the apt configuration: where the archive lives, which suites and components to
/// read, and the keyring that signs its Release files.
public struct AptSource: Sendable, Hashable, Codable {
    public var uris: [String]
    public var suites: [String]
    public var components: [String]
    public var architectures: [String]
    public var keyring: String

    public init(uris: [String], suites: [String], components: [String], architectures: [String] = [],
                keyring: String = AptConfiguration.defaultKeyring) {
        self.uris = uris
        self.suites = suites
        self.components = components
        self.architectures = architectures
        self.keyring = keyring
    }

    /// Whether this entry carries packages for `architecture` (no `arch=` restriction means every one).
    public func serves(architecture: String) -> Bool {
        architectures.isEmpty || architectures.contains(architecture)
    }
}

/// Reads the host's apt sources (deb822 `.sources` and one-line `.list` files) and picks the entries for a
/// Debian distribution. Kiln never names a mirror itself: it uses what the host is configured with, or `--mirror`.
public enum AptConfiguration {
    /// The keyring used when an entry names none (or carries its key inline).
    public static let defaultKeyring = "/usr/share/keyrings/debian-archive-keyring.gpg"

    /// The sources for `distribution` (its suites: `bookworm`, `bookworm-updates`, `bookworm-security`, ...).
    /// `mirror` replaces the URIs of every selected entry; when the host has no entry at all it stands alone
    /// with the suites `<distribution>` and `<distribution>-updates`.
    public static func sources(root: String = "/", mirror: String? = nil,
                               distribution: String = "bookworm") throws -> [AptSource] {
        let (all, searched) = try readAll(root: root)
        var selected: [AptSource] = []
        for source in all {
            let suites = source.suites.filter { belongs($0, to: distribution) }
            if suites.isEmpty { continue }
            var entry = source
            entry.suites = suites
            if let mirror { entry.uris = [mirror] }
            selected.append(entry)
        }
        if selected.isEmpty, let mirror {
            return [AptSource(uris: [mirror], suites: [distribution, distribution + "-updates"], components: ["main"])]
        }
        if selected.isEmpty { throw PackageError.noSources(distribution: distribution, searched: searched) }
        return selected
    }

    /// Every enabled `deb` entry under `root`, in apt's order (sources.list first, then sources.list.d sorted).
    public static func readAll(root: String = "/") throws -> (sources: [AptSource], files: [String]) {
        let base = (root as NSString).appendingPathComponent("etc/apt")
        let fm = FileManager.default
        var files: [String] = []
        let main = base + "/sources.list"
        if fm.fileExists(atPath: main) { files.append(main) }
        let dir = base + "/sources.list.d"
        if let names = try? fm.contentsOfDirectory(atPath: dir) {
            for name in names.sorted() where !name.hasPrefix(".") && !name.contains(".disabled") {
                if name.hasSuffix(".list") || name.hasSuffix(".sources") { files.append(dir + "/" + name) }
            }
        }
        var result: [AptSource] = []
        for file in files {
            guard let data = fm.contents(atPath: file) else {
                throw PackageError.sourcesUnreadable(path: file, reason: "cannot read file")
            }
            let text = String(decoding: data, as: UTF8.self)
            if file.hasSuffix(".sources") {
                result += try parseDeb822(text, path: file)
            } else {
                result += try parseOneLine(text, path: file)
            }
        }
        return (result, files)
    }

    /// Whether `suite` is one of the distribution's suites (`bookworm`, `bookworm-updates`, `bookworm/updates`).
    public static func belongs(_ suite: String, to distribution: String) -> Bool {
        suite == distribution || suite.hasPrefix(distribution + "-") || suite.hasPrefix(distribution + "/")
    }

    /// Parses deb822 `.sources` text: stanzas separated by blank lines, case-insensitive field names.
    public static func parseDeb822(_ text: String, path: String) throws -> [AptSource] {
        var result: [AptSource] = []
        for stanza in Deb822Text.stanzas(text) {
            let types = words(stanza["types"])
            guard types.contains("deb") else { continue }
            if let enabled = stanza["enabled"]?.trimmingCharacters(in: .whitespaces).lowercased(),
               ["no", "false", "0"].contains(enabled) { continue }
            let uris = words(stanza["uris"])
            let suites = words(stanza["suites"])
            guard !uris.isEmpty, !suites.isEmpty else {
                throw PackageError.sourcesUnreadable(path: path, reason: "a 'deb' stanza lacks URIs or Suites")
            }
            let keyring = keyringPath(stanza["signed-by"])
            result.append(AptSource(uris: uris, suites: suites, components: words(stanza["components"]),
                                    architectures: words(stanza["architectures"]), keyring: keyring))
        }
        return result
    }

    /// Parses one-line `sources.list` text: `deb [opt=value ...] URI SUITE COMPONENT...`.
    public static func parseOneLine(_ text: String, path: String) throws -> [AptSource] {
        var result: [AptSource] = []
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var line = Substring(rawLine)
            if let hash = line.firstIndex(of: "#") { line = line[..<hash] }
            line = line.drop(while: { $0 == " " || $0 == "\t" })
            if line.isEmpty { continue }
            let location = "\(path):\(index + 1)"
            guard let typeEnd = line.firstIndex(where: { $0 == " " || $0 == "\t" }) else {
                throw PackageError.sourcesUnreadable(path: location, reason: "expected 'deb URI SUITE COMPONENT...'")
            }
            let type = line[..<typeEnd]
            guard type == "deb" else { continue }
            var rest = line[typeEnd...].drop(while: { $0 == " " || $0 == "\t" })
            var options: [String: String] = [:]
            if rest.hasPrefix("[") {
                guard let close = rest.firstIndex(of: "]") else {
                    throw PackageError.sourcesUnreadable(path: location, reason: "unterminated '[' option list")
                }
                for option in rest[rest.index(after: rest.startIndex)..<close].split(whereSeparator: { $0 == " " || $0 == "\t" }) {
                    let parts = option.split(separator: "=", maxSplits: 1)
                    if parts.count == 2 { options[parts[0].lowercased()] = String(parts[1]) }
                }
                rest = rest[rest.index(after: close)...]
            }
            let fields = rest.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard fields.count >= 2 else {
                throw PackageError.sourcesUnreadable(path: location, reason: "expected 'deb URI SUITE COMPONENT...'")
            }
            let arches = options["arch"].map { $0.split(separator: ",").map(String.init) } ?? []
            result.append(AptSource(uris: [fields[0]], suites: [fields[1]], components: Array(fields.dropFirst(2)),
                                    architectures: arches, keyring: keyringPath(options["signed-by"])))
        }
        return result
    }

    /// A `Signed-By` value that is a path (or several, comma-separated) gives the first; an inline key block,
    /// a fingerprint or nothing gives the default Debian keyring.
    static func keyringPath(_ value: String?) -> String {
        guard let value = value?.trimmingCharacters(in: .whitespacesAndNewlines), value.hasPrefix("/") else {
            return defaultKeyring
        }
        let first = value.split(whereSeparator: { $0 == "," || $0 == " " }).first.map(String.init)
        return first ?? defaultKeyring
    }

    private static func words(_ value: String?) -> [String] {
        (value ?? "").split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).map(String.init)
    }
}

/// A small deb822 reader for short texts (sources, Release). The large Packages index has its own byte parser.
enum Deb822Text {
    /// The stanzas of `text`, field names lower-cased, continuation lines joined with "\n".
    static func stanzas(_ text: String) -> [[String: String]] {
        var result: [[String: String]] = []
        var current: [String: String] = [:]
        var lastKey: String?
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = rawLine.hasSuffix("\r") ? rawLine.dropLast() : rawLine
            if line.hasPrefix("#") { continue }
            if line.allSatisfy({ $0 == " " || $0 == "\t" }) {
                if !current.isEmpty { result.append(current) }
                current = [:]
                lastKey = nil
                continue
            }
            if line.first == " " || line.first == "\t" {
                if let key = lastKey {
                    let content = line.drop(while: { $0 == " " || $0 == "\t" })
                    current[key, default: ""] += "\n" + (content == "." ? "" : content)
                }
                continue
            }
            guard let colon = line.firstIndex(of: ":") else { continue }
            let key = line[..<colon].lowercased()
            current[key] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            lastKey = key
        }
        if !current.isEmpty { result.append(current) }
        return result
    }
}

import Foundation

/// The fields Kiln uses from a (verified) Release file: its suite names, date and the SHA256 file list.
public struct ReleaseFile: Sendable, Equatable {
    /// One line of the SHA256 section: the hash and size of a file below `dists/<suite>/`.
    public struct Entry: Sendable, Equatable {
        public var sha256: String
        public var size: Int
    }

    public var suite: String?
    public var codename: String?
    /// `Date:` as seconds since the epoch.
    public var date: Int
    public var sha256: [String: Entry]

    /// Parses Release text. `url` names the file in errors.
    public init(text: String, url: String) throws {
        guard let stanza = Deb822Text.stanzas(text).first else {
            throw PackageError.malformedRelease(url: url, reason: "empty file")
        }
        suite = stanza["suite"]
        codename = stanza["codename"]
        guard let dateText = stanza["date"] else { throw PackageError.malformedRelease(url: url, reason: "no Date field") }
        guard let parsed = Self.parseDate(dateText) else {
            throw PackageError.malformedRelease(url: url, reason: "cannot parse Date '\(dateText)'")
        }
        date = parsed
        guard let list = stanza["sha256"] else {
            throw PackageError.malformedRelease(url: url, reason: "no SHA256 field")
        }
        var entries: [String: Entry] = [:]
        for line in list.split(separator: "\n") {
            let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard parts.count == 3, parts[0].count == 64, let size = Int(parts[1]) else {
                if parts.isEmpty { continue }
                throw PackageError.malformedRelease(url: url, reason: "bad SHA256 line '\(line)'")
            }
            entries[String(parts[2])] = Entry(sha256: parts[0].lowercased(), size: size)
        }
        sha256 = entries
    }

    /// Release dates are RFC 2822 (`Sat, 10 May 2025 08:43:07 UTC`); the weekday is optional.
    static func parseDate(_ text: String) -> Int? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        for format in ["EEE, dd MMM yyyy HH:mm:ss zzz", "EEE, dd MMM yyyy HH:mm:ss Z", "dd MMM yyyy HH:mm:ss zzz",
                       "dd MMM yyyy HH:mm:ss Z"] {
            formatter.dateFormat = format
            if let date = formatter.date(from: trimmed) { return Int(date.timeIntervalSince1970) }
        }
        return nil
    }

    /// Whether this Release describes `suite` (by Suite or Codename), so one suite's file cannot stand in for another.
    public func describes(suite wanted: String) -> Bool {
        suite == wanted || codename == wanted
    }
}

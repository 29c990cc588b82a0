import Foundation

/// One stanza of a Packages index, kept as the few raw fields Kiln needs. Dependency fields are parsed only
/// for the packages a resolution visits.
struct IndexEntry: Sendable {
    var name = ""
    var version = ""
    var architecture = ""
    var filename = ""
    var size = -1
    var sha256 = ""
    var depends = ""
    var preDepends = ""
    var provides = ""
    var source = ""
    /// Index into `PackageIndex.origins`.
    var origin = 0

    var isComplete: Bool { !name.isEmpty && !version.isEmpty && !filename.isEmpty && size >= 0 && isSHA256Hex(sha256) }
}

/// Whether `text` is 64 lower-case hex digits (it becomes a cache file name, so nothing else may pass).
func isSHA256Hex(_ text: String) -> Bool {
    text.utf8.count == 64 && text.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
}

/// A fast deb822 reader for Packages indices: walks the UTF-8 bytes once, line by line (memchr), and turns only the
/// kept fields into Strings. The bookworm main index (~45 MB, ~64k stanzas) parses in a fraction of a second.
enum PackagesParser {
    private enum Field: Int {
        case package, version, architecture, filename, size, sha256, depends, preDepends, provides, source, other
    }

    private static let names: [(Field, [UInt8])] = [
        (.package, Array("Package".utf8)), (.version, Array("Version".utf8)),
        (.architecture, Array("Architecture".utf8)), (.filename, Array("Filename".utf8)),
        (.size, Array("Size".utf8)), (.sha256, Array("SHA256".utf8)), (.depends, Array("Depends".utf8)),
        (.preDepends, Array("Pre-Depends".utf8)), (.provides, Array("Provides".utf8)),
        (.source, Array("Source".utf8)),
    ]

    static func parse(_ data: [UInt8], origin: Int) -> [IndexEntry] {
        data.withUnsafeBufferPointer { parse($0, origin: origin) }
    }

    static func parse(_ buffer: UnsafeBufferPointer<UInt8>, origin: Int) -> [IndexEntry] {
        guard let base = buffer.baseAddress else { return [] }
        var entries: [IndexEntry] = []
        entries.reserveCapacity(buffer.count / 700)
        var current = IndexEntry()
        current.origin = origin
        var last = Field.other
        var pos = 0
        let count = buffer.count
        func flush() {
            if current.isComplete { entries.append(current) }
            current = IndexEntry()
            current.origin = origin
            last = .other
        }
        while pos < count {
            let end: Int
            if let hit = memchr(base + pos, 0x0A, count - pos) {
                end = base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
            } else {
                end = count
            }
            var lineEnd = end
            if lineEnd > pos && base[lineEnd - 1] == 0x0D { lineEnd -= 1 }
            if lineEnd == pos {
                flush()
            } else if base[pos] == 0x20 || base[pos] == 0x09 {
                if last == .depends || last == .preDepends || last == .provides {
                    append(string(base, pos, lineEnd), to: last, of: &current)
                }
            } else if let colon = firstColon(base, pos, lineEnd) {
                let field = identify(base, pos, colon)
                last = field
                if field != .other { set(field, string(base, colon + 1, lineEnd), in: &current) }
            }
            pos = end + 1
        }
        flush()
        return entries
    }

    private static func firstColon(_ base: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> Int? {
        var i = start
        while i < end {
            if base[i] == 0x3A { return i }
            i += 1
        }
        return nil
    }

    private static func identify(_ base: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> Field {
        let length = end - start
        for (field, name) in names where name.count == length {
            var equal = true
            for offset in 0..<length where name[offset] != base[start + offset] {
                equal = false
                break
            }
            if equal { return field }
        }
        return .other
    }

    /// The bytes between `start` and `end` with surrounding spaces and tabs removed.
    private static func string(_ base: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> String {
        var a = start
        var b = end
        while a < b && (base[a] == 0x20 || base[a] == 0x09) { a += 1 }
        while b > a && (base[b - 1] == 0x20 || base[b - 1] == 0x09) { b -= 1 }
        return String(decoding: UnsafeBufferPointer(start: base + a, count: b - a), as: UTF8.self)
    }

    private static func set(_ field: Field, _ value: String, in entry: inout IndexEntry) {
        switch field {
        case .package: entry.name = value
        case .version: entry.version = value
        case .architecture: entry.architecture = value
        case .filename: entry.filename = value
        case .size: entry.size = Int(value) ?? -1
        case .sha256: entry.sha256 = value.lowercased()
        case .depends: entry.depends = value
        case .preDepends: entry.preDepends = value
        case .provides: entry.provides = value
        case .source: entry.source = value
        case .other: break
        }
    }

    private static func append(_ value: String, to field: Field, of entry: inout IndexEntry) {
        switch field {
        case .depends: entry.depends += " " + value
        case .preDepends: entry.preDepends += " " + value
        case .provides: entry.provides += " " + value
        default: break
        }
    }
}

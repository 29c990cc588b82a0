/// A Debian package version (`[epoch:]upstream[-revision]`), ordered by dpkg's algorithm
/// (deb-version(7)): epochs numerically, then upstream and revision by alternating non-digit and digit runs,
/// where letters sort before non-letters and `~` sorts before everything, even the end of the string.
public struct DebianVersion: Comparable, Hashable, Sendable, CustomStringConvertible {
    public let epoch: Int
    public let upstream: String
    public let revision: String

    public init(_ string: String) {
        var rest = Substring(string)
        if let colon = rest.firstIndex(of: ":"), let value = Int(rest[..<colon]) {
            epoch = value
            rest = rest[rest.index(after: colon)...]
        } else {
            epoch = 0
        }
        if let dash = rest.lastIndex(of: "-") {
            upstream = String(rest[..<dash])
            revision = String(rest[rest.index(after: dash)...])
        } else {
            upstream = String(rest)
            revision = ""
        }
    }

    public var description: String {
        (epoch > 0 ? "\(epoch):" : "") + upstream + (revision.isEmpty ? "" : "-" + revision)
    }

    public static func < (lhs: DebianVersion, rhs: DebianVersion) -> Bool {
        compare(lhs, rhs) < 0
    }

    public static func == (lhs: DebianVersion, rhs: DebianVersion) -> Bool {
        compare(lhs, rhs) == 0
    }

    /// Only the epoch: versions that compare equal ("1.0" and "1.00") must hash alike.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(epoch)
    }

    /// Negative, zero or positive as `a` sorts before, equal to or after `b`.
    public static func compare(_ a: DebianVersion, _ b: DebianVersion) -> Int {
        if a.epoch != b.epoch { return a.epoch < b.epoch ? -1 : 1 }
        let upstream = compareFragment(Array(a.upstream.utf8), Array(b.upstream.utf8))
        if upstream != 0 { return upstream }
        return compareFragment(Array(a.revision.utf8), Array(b.revision.utf8))
    }

    /// Compares two version strings without building values.
    public static func compare(_ a: String, _ b: String) -> Int {
        compare(DebianVersion(a), DebianVersion(b))
    }

    /// dpkg's `order()`: `~` is -1, end/digit is 0, letters are themselves, anything else sorts after letters.
    private static func order(_ c: UInt8) -> Int {
        if c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") { return 0 }
        if (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z")) || (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) {
            return Int(c)
        }
        if c == UInt8(ascii: "~") { return -1 }
        return Int(c) + 256
    }

    private static func isDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }

    /// dpkg's `verrevcmp()`.
    private static func compareFragment(_ a: [UInt8], _ b: [UInt8]) -> Int {
        var i = 0
        var j = 0
        while i < a.count || j < b.count {
            var firstDiff = 0
            while (i < a.count && !isDigit(a[i])) || (j < b.count && !isDigit(b[j])) {
                let ac = i < a.count ? order(a[i]) : 0
                let bc = j < b.count ? order(b[j]) : 0
                if ac != bc { return ac - bc }
                i += 1
                j += 1
            }
            while i < a.count && a[i] == UInt8(ascii: "0") { i += 1 }
            while j < b.count && b[j] == UInt8(ascii: "0") { j += 1 }
            while i < a.count && isDigit(a[i]) && j < b.count && isDigit(b[j]) {
                if firstDiff == 0 { firstDiff = Int(a[i]) - Int(b[j]) }
                i += 1
                j += 1
            }
            if i < a.count && isDigit(a[i]) { return 1 }
            if j < b.count && isDigit(b[j]) { return -1 }
            if firstDiff != 0 { return firstDiff }
        }
        return 0
    }
}

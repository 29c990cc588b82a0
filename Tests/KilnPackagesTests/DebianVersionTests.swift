import Testing
@testable import KilnPackages

@Suite("Debian version ordering")
struct DebianVersionTests {
    /// Pairs where the first sorts strictly before the second, checked against `dpkg --compare-versions` below.
    static let ordered: [(String, String)] = [
        ("1.0", "1.1"), ("1.0", "1.0-1"), ("1.0-1", "1.0-2"), ("1.0~rc1", "1.0"), ("1.0~~", "1.0~"),
        ("1.0~", "1.0"), ("1.0", "1.0a"), ("1.0a", "1.0+"), ("1.0+", "1.0.1"), ("1.9", "1.10"),
        ("0:9.9", "1:0.1"), ("1:1.0", "2:0.1"), ("2.36-9", "2.36-9+deb12u10"), ("2.36-9+deb12u9", "2.36-9+deb12u10"),
        ("6.1.0-33", "6.1.0-34"), ("6.1.129-1", "6.1.135-1"), ("1.0-1~bpo12+1", "1.0-1"), ("a", "b"),
        ("1.0.0", "1.0.0.0"), ("1.2.3-1", "1.2.3-1.1"), ("7.88.1-10+deb12u8", "7.88.1-10+deb12u12"), ("", "0.1"),
        ("1.0-0", "1.0-0.1"), ("2:1.0", "10:0"), ("1.0~beta1~svn1245", "1.0~beta1"), ("1.0Z", "1.0a"),
    ]

    @Test func strictOrder() {
        for (low, high) in Self.ordered {
            #expect(DebianVersion.compare(low, high) < 0, "\(low) < \(high)")
            #expect(DebianVersion.compare(high, low) > 0, "\(high) > \(low)")
            #expect(DebianVersion(low) < DebianVersion(high))
        }
    }

    @Test func equalities() {
        for (a, b) in [("1.0", "1.0"), ("0:1.0", "1.0"), ("1.00", "1.0"), ("1.0-0", "1.0-0"), ("01", "1"), ("1:2", "1:02")] {
            #expect(DebianVersion.compare(a, b) == 0, "\(a) == \(b)")
            #expect(DebianVersion(a) == DebianVersion(b))
        }
        // "1.0" and "1.0-0": dpkg treats a missing revision as empty, and "" < "0" only by length of digits: equal.
        #expect(DebianVersion.compare("1.0", "1.0-0") == 0)
    }

    @Test func components() {
        let version = DebianVersion("2:1.2-3-4~bpo1")
        #expect(version.epoch == 2)
        #expect(version.upstream == "1.2-3")
        #expect(version.revision == "4~bpo1")
        #expect(version.description == "2:1.2-3-4~bpo1")
        #expect(DebianVersion("1.0").revision == "")
    }

    @Test func sortingPicksHighest() {
        let versions = ["6.1.0-33", "6.1.0-34", "6.1.0-9", "6.1.0-34~bpo", "5.10.0-30"].map(DebianVersion.init)
        #expect(versions.max()?.description == "6.1.0-34")
        #expect(versions.sorted().map(\.description) == ["5.10.0-30", "6.1.0-9", "6.1.0-33", "6.1.0-34~bpo", "6.1.0-34"])
    }

    /// The same pairs through dpkg itself, so the table above cannot drift from the real algorithm.
    @Test func agreesWithDpkg() throws {
        for (low, high) in Self.ordered where !low.isEmpty {
            #expect(try runTool("dpkg", ["--compare-versions", low, "lt", high]) == 0, "dpkg: \(low) < \(high)")
        }
    }
}

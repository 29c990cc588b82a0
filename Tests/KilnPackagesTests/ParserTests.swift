import Foundation
import Testing
@testable import KilnPackages

@Suite("Release and Packages parsing")
struct ParserTests {
    static let release = """
    Origin: Debian
    Label: Debian
    Suite: stable-security
    Codename: bookworm-security
    Date: Sat, 10 May 2025 08:43:07 UTC
    Architectures: amd64 arm64
    Components: updates/main main
    Description: Debian 12 - Security Updates
    MD5Sum:
     0ba4e5d3e1d6a1e8a6f7e9b1b6e6e0c1 1234 main/binary-amd64/Packages
    SHA256:
     2f1b8a0b1d1f7f0e5c9a3d4e6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8 45000000 main/binary-amd64/Packages
     AAAA8a0b1d1f7f0e5c9a3d4e6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8 9000000 main/binary-amd64/Packages.xz
    """

    @Test func releaseFields() throws {
        let release = try ReleaseFile(text: Self.release, url: "http://x/InRelease")
        #expect(release.date == 1_746_866_587)
        #expect(release.suite == "stable-security")
        #expect(release.describes(suite: "bookworm-security"))
        #expect(!release.describes(suite: "bookworm"))
        #expect(release.sha256.count == 2)
        #expect(release.sha256["main/binary-amd64/Packages.xz"]
                == .init(sha256: "aaaa8a0b1d1f7f0e5c9a3d4e6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8", size: 9_000_000))
    }

    @Test func releaseDateFormats() {
        #expect(ReleaseFile.parseDate("Sat, 01 Jun 2024 12:00:00 UTC") == 1_717_243_200)
        #expect(ReleaseFile.parseDate("Sat, 01 Jun 2024 12:00:00 +0000") == 1_717_243_200)
        #expect(ReleaseFile.parseDate("Sat, 01 Jun 2024 14:00:00 +0200") == 1_717_243_200)
        #expect(ReleaseFile.parseDate("yesterday") == nil)
    }

    @Test func releaseErrorsNameTheURL() {
        #expect(throws: PackageError.malformedRelease(url: "u", reason: "no Date field")) {
            try ReleaseFile(text: "Suite: x\nSHA256:\n", url: "u")
        }
        #expect(throws: PackageError.malformedRelease(url: "u", reason: "no SHA256 field")) {
            try ReleaseFile(text: "Suite: x\nDate: Sat, 01 Jun 2024 12:00:00 UTC\n", url: "u")
        }
        #expect(throws: PackageError.self) {
            try ReleaseFile(text: "Date: Sat, 01 Jun 2024 12:00:00 UTC\nSHA256:\n abc 12 main/x\n", url: "u")
        }
    }

    static let packages = """
    Package: libc6
    Source: glibc
    Version: 2.36-9+deb12u10
    Installed-Size: 12986
    Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>
    Architecture: amd64
    Multi-Arch: same
    Replaces: libc6-amd64
    Depends: libgcc-s1
    Recommends: libidn2-0 (>= 2.0.5~)
    Suggests: glibc-doc, debconf | debconf-2.0, libc-l10n, locales
    Breaks: aide (<< 0.17.3-4+b3), busybox (<< 1.30.1-6)
    Description: GNU C Library: Shared libraries
     Contains the standard libraries that are used by nearly all programs on
     the system.
    Homepage: https://www.gnu.org/software/libc/libc.html
    Description-md5: fc3001b0b90a1c8e6690b283a619d57f
    Tag: role::shared-lib
    Section: libs
    Priority: optional
    Filename: pool/main/g/glibc/libc6_2.36-9+deb12u10_amd64.deb
    Size: 2757936
    MD5sum: 2cc6e7e4f0e4d4a7bbf0ea0f3d5e5a0b
    SHA256: 7B6E1E8A2E1B1F8F7E1C3D2E4F5A6B7C8D9E0F1A2B3C4D5E6F708192A3B4C5D6

    Package: mawk
    Version: 1.3.4.20200120-3.1
    Architecture: amd64
    Pre-Depends: libc6 (>= 2.34)
    Depends: libfoo,
     libbar (>= 1) | libbaz
    Provides: awk
    Filename: pool/main/m/mawk/mawk_1.3.4.20200120-3.1_amd64.deb
    Size: 74000
    SHA256: 1111111111111111111111111111111111111111111111111111111111111111

    Package: incomplete
    Version: 1.0
    Architecture: amd64

    """

    @Test func packagesStanzas() {
        let entries = PackagesParser.parse(Array(Self.packages.utf8), origin: 0)
        #expect(entries.count == 2)
        let libc = entries[0]
        #expect(libc.name == "libc6")
        #expect(libc.source == "glibc")
        #expect(libc.version == "2.36-9+deb12u10")
        #expect(libc.architecture == "amd64")
        #expect(libc.filename == "pool/main/g/glibc/libc6_2.36-9+deb12u10_amd64.deb")
        #expect(libc.size == 2_757_936)
        #expect(libc.sha256 == "7b6e1e8a2e1b1f8f7e1c3d2e4f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6")
        #expect(libc.depends == "libgcc-s1")
        let mawk = entries[1]
        #expect(mawk.preDepends == "libc6 (>= 2.34)")
        #expect(Dependency.parseField(Substring(mawk.depends)).map { $0.map(\.name) } == [["libfoo"], ["libbar", "libbaz"]])
        #expect(mawk.provides == "awk")
    }

    @Test func crlfAndNoTrailingNewline() {
        let text = "Package: a\r\nVersion: 1\r\nArchitecture: all\r\nFilename: pool/a.deb\r\nSize: 1\r\nSHA256: "
            + String(repeating: "a", count: 64)
        let entries = PackagesParser.parse(Array(text.utf8), origin: 3)
        #expect(entries.count == 1)
        #expect(entries.first?.filename == "pool/a.deb")
        #expect(entries.first?.origin == 3)
    }

    @Test func dependencyFields() {
        let groups = Dependency.parseField("libc6 (>= 2.34), python3:any (<< 3.12) | python3-minimal, foo [amd64] <!nocheck>, , bar(=1.0)")
        #expect(groups == [
            [Dependency(name: "libc6", relation: ">=", version: "2.34")],
            [Dependency(name: "python3", relation: "<<", version: "3.12"), Dependency(name: "python3-minimal")],
            [Dependency(name: "foo")],
            [Dependency(name: "bar", relation: "=", version: "1.0")],
        ])
        #expect(groups[0][0].description == "libc6 (>= 2.34)")
    }
}

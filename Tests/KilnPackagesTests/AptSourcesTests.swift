import Foundation
import Testing
@testable import KilnPackages

@Suite("apt sources")
struct AptSourcesTests {
    @Test func deb822StanzasWithCommentsDisabledAndSourceTypes() throws {
        let text = """
        Types: deb
        # a snapshot comment between fields
        URIs: http://mirror.example/debian
        Suites: bookworm bookworm-updates
        Components: main non-free-firmware
        Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

        Types: deb-src
        URIs: http://mirror.example/debian
        Suites: bookworm
        Components: main

        Types: deb
        URIs: http://mirror.example/other
        Suites: bookworm
        Components: main
        Enabled: no

        types: deb deb-src
        uris: http://security.example/debian-security
        suites: bookworm-security
        components: main
        architectures: amd64 arm64
        signed-by:
         -----BEGIN PGP PUBLIC KEY BLOCK-----
         .
         mQINBGPL0BUBEADmW5NdOOHwPIJlgPu6JDcKw/NZJPEpEu9fVYiX+7ZLOuP6RHp9
         -----END PGP PUBLIC KEY BLOCK-----
        """
        let sources = try AptConfiguration.parseDeb822(text, path: "test.sources")
        #expect(sources.count == 2)
        #expect(sources[0] == AptSource(uris: ["http://mirror.example/debian"], suites: ["bookworm", "bookworm-updates"],
                                        components: ["main", "non-free-firmware"], architectures: [],
                                        keyring: "/usr/share/keyrings/debian-archive-keyring.gpg"))
        #expect(sources[1].uris == ["http://security.example/debian-security"])
        #expect(sources[1].architectures == ["amd64", "arm64"])
        // An inline key block falls back to the default Debian keyring.
        #expect(sources[1].keyring == AptConfiguration.defaultKeyring)
    }

    @Test func oneLineFormatWithOptions() throws {
        let text = """
        # comment
        deb [arch=amd64,i386 signed-by=/etc/apt/keyrings/local.gpg] http://mirror.example/debian bookworm main contrib
        deb-src http://mirror.example/debian bookworm main
        deb http://security.example/debian-security bookworm-security main # trailing comment
          deb [ arch=arm64 ] http://ports.example/debian bookworm main

        """
        let sources = try AptConfiguration.parseOneLine(text, path: "sources.list")
        #expect(sources.count == 3)
        #expect(sources[0].architectures == ["amd64", "i386"])
        #expect(sources[0].keyring == "/etc/apt/keyrings/local.gpg")
        #expect(sources[0].components == ["main", "contrib"])
        #expect(sources[1].suites == ["bookworm-security"])
        #expect(sources[1].keyring == AptConfiguration.defaultKeyring)
        #expect(sources[2].architectures == ["arm64"])
        #expect(!sources[2].serves(architecture: "amd64"))
    }

    @Test func malformedLineNamesFileAndLine() {
        #expect(throws: PackageError.sourcesUnreadable(path: "x.list:2", reason: "expected 'deb URI SUITE COMPONENT...'")) {
            try AptConfiguration.parseOneLine("# ok\ndeb http://only-uri\n", path: "x.list")
        }
        #expect(throws: PackageError.self) {
            try AptConfiguration.parseOneLine("deb [arch=amd64 http://x bookworm main\n", path: "x.list")
        }
    }

    @Test func readsRootDirectoryAndSelectsDistribution() throws {
        let root = try makeTempDirectory("apt")
        defer { removeTree(root) }
        try writeFile(root + "/etc/apt/sources.list", """
        deb http://mirror.example/debian bullseye main
        deb http://mirror.example/debian bookworm main
        """)
        try writeFile(root + "/etc/apt/sources.list.d/debian.sources", """
        Types: deb
        URIs: http://mirror.example/debian
        Suites: bookworm-updates trixie
        Components: main
        Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
        """)
        try writeFile(root + "/etc/apt/sources.list.d/vendor.list.disabled-by-admin",
                      "deb http://vendor.example/apt bookworm main\n")
        try writeFile(root + "/etc/apt/sources.list.d/notes.txt", "deb http://notes.example/apt bookworm main\n")
        try writeFile(root + "/etc/apt/sources.list.d/security.list",
                      "deb [signed-by=/k.gpg] http://security.example/debian-security bookworm-security main\n")

        let (all, files) = try AptConfiguration.readAll(root: root)
        #expect(files.map { ($0 as NSString).lastPathComponent } == ["sources.list", "debian.sources", "security.list"])
        #expect(all.count == 4)

        let selected = try AptConfiguration.sources(root: root, distribution: "bookworm")
        #expect(selected.map(\.suites) == [["bookworm"], ["bookworm-updates"], ["bookworm-security"]])
        #expect(selected[2].keyring == "/k.gpg")

        let mirrored = try AptConfiguration.sources(root: root, mirror: "http://127.0.0.1:9/debian", distribution: "bookworm")
        #expect(mirrored.allSatisfy { $0.uris == ["http://127.0.0.1:9/debian"] })
        #expect(mirrored.count == 3)
    }

    @Test func noSourcesIsAnErrorAndMirrorStandsAlone() throws {
        let root = try makeTempDirectory("apt-empty")
        defer { removeTree(root) }
        #expect(throws: PackageError.noSources(distribution: "bookworm", searched: [])) {
            try AptConfiguration.sources(root: root)
        }
        let sources = try AptConfiguration.sources(root: root, mirror: "http://127.0.0.1:9/debian")
        #expect(sources == [AptSource(uris: ["http://127.0.0.1:9/debian"], suites: ["bookworm", "bookworm-updates"],
                                      components: ["main"])])
    }

    @Test func suiteMembership() {
        #expect(AptConfiguration.belongs("bookworm", to: "bookworm"))
        #expect(AptConfiguration.belongs("bookworm-security", to: "bookworm"))
        #expect(AptConfiguration.belongs("bookworm/updates", to: "bookworm"))
        #expect(!AptConfiguration.belongs("bookwormish", to: "bookworm"))
        #expect(!AptConfiguration.belongs("trixie", to: "bookworm"))
    }

    @Test func hostConfigurationParses() throws {
        // The host's own apt configuration must parse (whatever it holds); no network is used.
        _ = try AptConfiguration.readAll(root: "/")
    }
}

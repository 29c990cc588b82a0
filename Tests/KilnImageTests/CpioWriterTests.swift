import Foundation
import Glibc
import Testing
@testable import KilnImage

/// The newc writer, checked byte for byte on a small case and against GNU cpio for listing and extraction.
@Suite struct CpioWriterTests {
    let epoch: UInt32 = 1_700_000_000

    func sample(hostFile: String) -> [CpioEntry] {
        [
            .directory("/etc", mode: 0o755),
            .file("/etc/kiln/config.json", bytes: Array("{\"name\":\"router\"}\n".utf8)),
            CpioEntry(path: "/sbin/kiln-init", kind: .regular(.file(hostFile)), mode: 0o755),
            .symlink("/init", target: "/sbin/kiln-init"),
            .characterDevice("/dev/console", major: 5, minor: 1),
            .characterDevice("/dev/null", major: 1, minor: 3, mode: 0o666),
            CpioEntry(path: "/usr/bin/su", kind: .regular(.bytes(Array("suid".utf8))), mode: 0o4755),
            .file("/var/empty", bytes: []),
            .directory("/tmp", mode: 0o1777),
        ]
    }

    @Test func goldenBytesForOneFile() throws {
        let bytes = try CpioWriter(epoch: 0x05F5_E0FF).archive([.file("a", bytes: Array("hi".utf8))])
        let header = "070701" + "00000001" + "000081A4" + "00000000" + "00000000" + "00000001" + "05F5E0FF" + "00000002"
            + "00000000" + "00000000" + "00000000" + "00000000" + "00000002" + "00000000"
        let trailer = "070701" + "00000000" + "00000000" + "00000000" + "00000000" + "00000001" + "05F5E0FF" + "00000000"
            + "00000000" + "00000000" + "00000000" + "00000000" + "0000000B" + "00000000"
        let expected = Array(header.utf8) + Array("a\0".utf8) + Array("hi".utf8) + [0, 0]
            + Array(trailer.utf8) + Array("TRAILER!!!\0".utf8) + [0, 0, 0]
        #expect(bytes == expected)
        #expect(bytes.count % 4 == 0)
    }

    @Test func sortedWithParentsAndDeterministic() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        try dir.write("init-binary", Array(repeating: 0x7f, count: 4097), mode: 0o755)
        let entries = sample(hostFile: dir.path + "/init-binary")
        let writer = CpioWriter(epoch: epoch)
        let first = try writer.archive(entries)
        var generator = SplitMix64(seed: 7)
        for _ in 0..<5 {
            var shuffled = entries
            shuffled.shuffle(using: &generator)
            #expect(try writer.archive(shuffled) == first, "input order does not matter")
        }
        let names = try runTool("cpio", ["-it", "--quiet"], input: first).text.split(separator: "\n").map(String.init)
        #expect(names == ["dev", "dev/console", "dev/null", "etc", "etc/kiln", "etc/kiln/config.json", "init", "sbin",
                          "sbin/kiln-init", "tmp", "usr", "usr/bin", "usr/bin/su", "var", "var/empty"])
    }

    /// `cpio -itv` sees the modes, owners, link counts, sizes and device numbers we wrote.
    @Test func gnuCpioListsWhatWasWritten() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        try dir.write("init-binary", Array(repeating: 0x7f, count: 4097), mode: 0o755)
        let archive = try CpioWriter(epoch: epoch).archive(sample(hostFile: dir.path + "/init-binary"))
        let listing = try runTool("cpio", ["-itv", "--quiet", "--numeric-uid-gid"], input: archive)
        #expect(listing.status == 0, "\(listing.stderr)")
        var rows = [String: [String]]()
        for line in listing.text.split(separator: "\n") {
            let words = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            let nameIndex = words[4].hasSuffix(",") ? 9 : 8  // devices show "major, minor"
            rows[words[nameIndex]] = words
        }
        func columns(_ name: String) -> [String] { Array((rows[name] ?? []).prefix(4)) }
        #expect(columns("dev") == ["drwxr-xr-x", "2", "0", "0"])
        #expect(columns("tmp") == ["drwxrwxrwt", "2", "0", "0"])
        #expect(columns("etc/kiln") == ["drwxr-xr-x", "2", "0", "0"])
        #expect(columns("sbin/kiln-init") == ["-rwxr-xr-x", "1", "0", "0"])
        #expect(rows["sbin/kiln-init"]?[4] == "4097")
        #expect(columns("usr/bin/su") == ["-rwsr-xr-x", "1", "0", "0"])
        #expect(columns("dev/console") == ["crw-------", "1", "0", "0"])
        #expect(rows["dev/console"]?[4...5] == ["5,", "1"])
        #expect(rows["dev/null"]?[4...5] == ["1,", "3"])
        #expect(columns("init") == ["lrwxrwxrwx", "1", "0", "0"])
        #expect(rows["init"]?.suffix(2) == ["->", "/sbin/kiln-init"])
    }

    /// `cpio -idm` extracts the same tree: contents, modes, mtimes, device numbers.
    @Test func gnuCpioExtractsWhatWasWritten() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        try dir.write("init-binary", Array(repeating: 0x7f, count: 4097), mode: 0o755)
        let archive = try CpioWriter(epoch: epoch).archive(sample(hostFile: dir.path + "/init-binary"))
        let out = dir.path + "/out"
        try FileSystem.makeDirectories(out)
        let result = try runTool("cpio", ["-idm", "--quiet", "--no-absolute-filenames"], input: archive, directory: out)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try FileSystem.readFile(out + "/etc/kiln/config.json") == Array("{\"name\":\"router\"}\n".utf8))
        #expect(try FileSystem.readFile(out + "/sbin/kiln-init") == Array(repeating: 0x7f, count: 4097))
        #expect(try FileSystem.readLink(out + "/init") == "/sbin/kiln-init")
        let binary = try #require(FileSystem.lstat(out + "/sbin/kiln-init"))
        #expect(binary.st_mode & 0o7777 == 0o755)
        #expect(binary.st_mtim.tv_sec == Int(epoch))
        #expect(try #require(FileSystem.lstat(out + "/var/empty")).st_size == 0)
        if getuid() == 0 {
            let console = try #require(FileSystem.lstat(out + "/dev/console"))
            #expect(console.st_mode & S_IFMT == S_IFCHR)
            #expect(deviceMajor(console.st_rdev) == 5 && deviceMinor(console.st_rdev) == 1)
        }
    }

    @Test func badEntriesAreRejected() {
        let writer = CpioWriter(epoch: epoch)
        #expect(throws: ImageError.self) { try writer.archive([.file("/a/../b", bytes: [])]) }
        #expect(throws: ImageError.self) { try writer.archive([.file("/", bytes: [])]) }
        #expect(throws: ImageError.self) { try writer.archive([.file("/a", bytes: [1]), .file("/a", bytes: [2])]) }
        #expect(throws: ImageError.self) { try writer.archive([.file("/a", bytes: [1]), .file("/a/b", bytes: [2])]) }
        #expect(throws: ImageError.self) { try writer.archive([.symlink("/a", target: "")]) }
    }

    @Test func stagedEntriesComeFromLstat() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        try dir.write("usr/lib/libx.so.1.0", "lib", mode: 0o644)
        #expect(symlink("libx.so.1.0", dir.path + "/usr/lib/libx.so.1") == 0)
        let entries = try CpioEntry.staged(root: dir.path, paths: ["/usr/lib", "/usr/lib/libx.so.1", "/usr/lib/libx.so.1.0"])
        #expect(entries[0] == .directory("/usr/lib", mode: 0o755))
        #expect(entries[1] == .symlink("/usr/lib/libx.so.1", target: "libx.so.1.0"))
        #expect(entries[2] == CpioEntry(path: "/usr/lib/libx.so.1.0", kind: .regular(.file(dir.path + "/usr/lib/libx.so.1.0")), mode: 0o644))
        #expect(throws: ImageError.missingPath(root: dir.path, path: "/nope")) { try CpioEntry.staged(root: dir.path, paths: ["/nope"]) }
    }
}

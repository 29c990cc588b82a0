import Foundation
import Glibc
import Testing
@testable import KilnImage

/// .deb files built with the real dpkg-deb (and hostile ones assembled with GNU tar and ar).
@Suite struct DebArchiveTests {
    /// Builds a package tree with every member kind and returns the .deb path.
    func buildDeb(in dir: TemporaryDirectory, compression: String) throws -> String {
        let tree = dir.path + "/pkg"
        try dir.write("pkg/DEBIAN/control", """
            Package: kiln-test
            Version: 1:1.2-3
            Architecture: amd64
            Maintainer: Kiln <kiln@example.invalid>
            Description: a test package
             with a continuation line

            """)
        try dir.write("pkg/usr/bin/hello", "#!/bin/sh\necho hello\n", mode: 0o755)
        try dir.write("pkg/usr/lib/x86_64-linux-gnu/libfoo.so.1.2.3", Array(repeating: 0x41, count: 100_000))
        try dir.write("pkg/etc/secret", "s", mode: 0o600)
        #expect(symlink("libfoo.so.1.2.3", tree + "/usr/lib/x86_64-linux-gnu/libfoo.so.1") == 0)
        #expect(link(tree + "/usr/bin/hello", tree + "/usr/bin/hello-again") == 0)
        try FileSystem.makeDirectories(tree + "/var/private")
        chmod(tree + "/var/private", 0o700)
        try FileSystem.makeDirectories(tree + "/dev")
        #expect(mknod(tree + "/dev/null", S_IFCHR | 0o666, deviceNumber(1, 3)) == 0)
        let deb = dir.path + "/kiln-test.deb"
        let result = try runTool("dpkg-deb", ["--root-owner-group", "-Z", compression, "--build", tree, deb])
        #expect(result.status == 0, "\(result.stderr)")
        return deb
    }

    @Test(arguments: ["xz", "zstd", "gzip"])
    func extractsEveryKindOfMember(compression: String) throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let deb = try buildDeb(in: dir, compression: compression)
        let root = dir.path + "/root"
        let written = try DebArchive(path: deb).extractData(into: root)

        let paths = Set(written.map(\.path))
        #expect(paths.isSuperset(of: ["/usr/bin/hello", "/usr/bin/hello-again", "/etc/secret",
                                      "/usr/lib/x86_64-linux-gnu/libfoo.so.1", "/var/private"]))
        #expect(!paths.contains("/dev/null"), "device nodes are skipped")
        #expect(FileSystem.lstat(root + "/dev/null") == nil)
        #expect(try FileSystem.readFile(root + "/usr/bin/hello") == Array("#!/bin/sh\necho hello\n".utf8))
        #expect(try FileSystem.readFile(root + "/usr/lib/x86_64-linux-gnu/libfoo.so.1.2.3")
            == Array(repeating: 0x41, count: 100_000))
        #expect(try FileSystem.readLink(root + "/usr/lib/x86_64-linux-gnu/libfoo.so.1") == "libfoo.so.1.2.3")
        let hello = try #require(FileSystem.lstat(root + "/usr/bin/hello"))
        let again = try #require(FileSystem.lstat(root + "/usr/bin/hello-again"))
        #expect(hello.st_ino == again.st_ino, "hard link extracted as a link")
        #expect(hello.st_mode & 0o7777 == 0o755)
        #expect(try #require(FileSystem.lstat(root + "/etc/secret")).st_mode & 0o7777 == 0o600)
        #expect(try #require(FileSystem.lstat(root + "/var/private")).st_mode & 0o7777 == 0o700)

        let listed = try DebArchive(path: deb).listData()
        let device = try #require(listed.first { $0.path == "/dev/null" })
        #expect(device.kind == .special)
        #expect(listed.first { $0.path == "/usr/lib/x86_64-linux-gnu/libfoo.so.1" }?.kind == .symlink(target: "libfoo.so.1.2.3"))
        let hardlinks = listed.filter { if case .hardlink = $0.kind { return true } else { return false } }
        #expect(hardlinks.count == 1)
        #expect(listed.first { $0.path == "/usr/lib/x86_64-linux-gnu/libfoo.so.1.2.3" }?.size == 100_000)

        let control = try DebArchive(path: deb).control()
        #expect(control.package == "kiln-test")
        #expect(control.version == "1:1.2-3")
        #expect(control.architecture == "amd64")
        #expect(control.fields["Description"] == "a test package\nwith a continuation line")
    }

    /// Assembles a .deb from a data.tar made by `tarArguments` (run in `dir`).
    func hostileDeb(_ dir: TemporaryDirectory, _ tarCommands: [[String]]) throws -> String {
        try dir.write("ctl/control", "Package: bad\nVersion: 1\n")
        #expect(try runTool("tar", ["-C", dir.path + "/ctl", "-czf", dir.path + "/control.tar.gz", "./control"]).status == 0)
        try dir.write("debian-binary", "2.0\n")
        for command in tarCommands {
            let result = try runTool("tar", command, directory: dir.path)
            #expect(result.status == 0, "\(result.stderr)")
        }
        let deb = dir.path + "/bad.deb"
        let ar = try runTool("ar", ["rc", deb, "debian-binary", "control.tar.gz", "data.tar"], directory: dir.path)
        #expect(ar.status == 0, "\(ar.stderr)")
        return deb
    }

    @Test func rejectsParentEscapes() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        try dir.write("evil", "x")
        try FileSystem.makeDirectories(dir.path + "/sub")
        let deb = try hostileDeb(dir, [["-C", dir.path + "/sub", "-cPf", dir.path + "/data.tar", "../evil"]])
        #expect(throws: ImageError.unsafeMember(archive: deb + "/data.tar", member: "../evil")) {
            try DebArchive(path: deb).extractData(into: dir.path + "/root")
        }
        #expect(throws: ImageError.self) { try DebArchive(path: deb).listData() }
    }

    @Test func rejectsAbsoluteMembers() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        try dir.write("abs/file", "x")
        let deb = try hostileDeb(dir, [["-cPf", dir.path + "/data.tar", dir.path + "/abs/file"]])
        #expect(throws: ImageError.unsafeMember(archive: deb + "/data.tar", member: dir.path + "/abs/file")) {
            try DebArchive(path: deb).extractData(into: dir.path + "/root")
        }
        #expect(FileSystem.lstat(dir.path + "/root/abs") == nil)
    }

    /// A symlinked directory pointing at an absolute host path is followed inside the root, not on the host.
    @Test func symlinkedParentsStayInsideTheRoot() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let outside = dir.path + "/outside"
        try FileSystem.makeDirectories(outside)
        try FileSystem.makeDirectories(dir.path + "/a")
        #expect(symlink(outside, dir.path + "/a/lib") == 0)
        try dir.write("b/lib/payload", "payload")
        let deb = try hostileDeb(dir, [
            ["-C", dir.path + "/a", "-cf", dir.path + "/data.tar", "./lib"],
            ["-C", dir.path + "/b", "-rf", dir.path + "/data.tar", "./lib/payload"],
        ])
        let root = dir.path + "/root"
        try DebArchive(path: deb).extractData(into: root)
        #expect(FileSystem.lstat(outside + "/payload") == nil, "nothing written outside the root")
        #expect(try FileSystem.readFile(root + outside + "/payload") == Array("payload".utf8))
    }

    @Test func notADebIsAnError() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        try dir.write("x.deb", "this is not an ar archive")
        #expect(throws: ImageError.self) { try DebArchive(path: dir.path + "/x.deb").listData() }
        #expect(throws: ImageError.self) { try DebArchive(path: dir.path + "/missing.deb").listData() }
    }
}

import Foundation
import Glibc
import Testing
@testable import KilnImage

/// ELF closures over staging roots built from the host's real binaries, checked against ldd.
@Suite struct ELFClosureTests {
    /// Host paths ldd reports for `binary` (the interpreter included, the vDSO left out).
    func lddPaths(_ binary: String) throws -> [String] {
        let output = try runTool("ldd", [binary]).text
        return output.split(separator: "\n").compactMap { line in
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            if let arrow = words.firstIndex(of: "=>"), arrow + 1 < words.count, words[arrow + 1].hasPrefix("/") {
                return words[arrow + 1].trimmingCharacters(in: .whitespaces)
            }
            if let first = words.first, first.hasPrefix("/") { return first.trimmingCharacters(in: .whitespaces) }
            return nil
        }
    }

    /// Copies a host file (or symlink, keeping its target text) to the same guest path under `root`; follows
    /// symlinks so their targets are staged too. Returns every guest path staged.
    @discardableResult
    func stage(_ hostPath: String, into root: String, guestDirectory: String? = nil) throws -> [String] {
        let guest = (guestDirectory.map { $0 + "/" + FileSystem.baseName(hostPath) }) ?? hostPath
        try FileSystem.makeDirectories(root + FileSystem.parentPath(guest))
        let st = try #require(FileSystem.lstat(hostPath))
        if FileSystem.isSymlink(st) {
            let target = try FileSystem.readLink(hostPath)
            unlink(root + guest)
            #expect(symlink(target, root + guest) == 0)
            let hostTarget = target.hasPrefix("/") ? target : FileSystem.parentPath(hostPath) + "/" + target
            let guestTarget = target.hasPrefix("/") ? nil : (guestDirectory ?? FileSystem.parentPath(guest))
            return [guest] + (try stage(hostTarget, into: root, guestDirectory: guestTarget))
        }
        try FileSystem.writeFile(root + guest, try FileSystem.readFile(hostPath), mode: 0o755, sync: false)
        return [guest]
    }

    /// Binaries with larger library graphs (nft: libnftables, libmnl, libnftnl, libjansson, libgmp, ...).
    @Test(arguments: ["/usr/sbin/nft", "/usr/bin/qemu-img"])
    func matchesLddForLargerGraphs(binary: String) throws {
        guard FileSystem.lstat(binary) != nil else { return }
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        var expected = Set(try stage(binary, into: dir.path))
        for library in try lddPaths(binary) { expected.formUnion(try stage(library, into: dir.path)) }
        let result = try ELFClosure(root: dir.path).resolve(binaries: [binary])
        #expect(Set(result.paths) == expected)
        #expect(result.resolved.count >= 5)
    }

    @Test func matchesLddForARealBinary() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        var expected = Set(try stage("/usr/bin/ls", into: dir.path))
        for library in try lddPaths("/usr/bin/ls") { expected.formUnion(try stage(library, into: dir.path)) }
        let result = try ELFClosure(root: dir.path).resolve(binaries: ["/usr/bin/ls"])
        #expect(Set(result.paths) == expected)
        #expect(result.paths.contains("/lib64/ld-linux-x86-64.so.2"))
        #expect(result.paths.contains("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"), "absolute symlink followed inside the root")
        #expect(result.paths.contains("/lib/x86_64-linux-gnu/libpcre2-8.so.0"))
        #expect(result.paths.contains { $0.hasPrefix("/lib/x86_64-linux-gnu/libpcre2-8.so.0.") }, "symlink chain kept")
        #expect(result.paths == result.paths.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) })
        #expect(result.resolved["libc.so.6"] == "/lib/x86_64-linux-gnu/libc.so.6")
    }

    @Test func followsAMergedUsrLayout() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        try stage("/usr/bin/ls", into: dir.path)
        for library in try lddPaths("/usr/bin/ls") where !library.hasPrefix("/lib64") {
            try stage(library, into: dir.path, guestDirectory: "/usr/lib/x86_64-linux-gnu")
        }
        try stage("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", into: dir.path, guestDirectory: "/usr/lib/x86_64-linux-gnu")
        #expect(symlink("usr/lib", dir.path + "/lib") == 0)
        try FileSystem.makeDirectories(dir.path + "/lib64")
        #expect(symlink("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", dir.path + "/lib64/ld-linux-x86-64.so.2") == 0)
        let result = try ELFClosure(root: dir.path).resolve(binaries: ["/usr/bin/ls"])
        #expect(result.paths.contains("/lib"), "the /lib symlink is part of the closure")
        #expect(result.paths.contains("/usr/lib/x86_64-linux-gnu/libc.so.6"))
        #expect(result.paths.contains("/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"))
        #expect(!result.paths.contains("/lib/x86_64-linux-gnu/libc.so.6"))
    }

    @Test func aMissingLibraryNamesTheBinaryAndTheLibrary() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        try stage("/usr/bin/ls", into: dir.path)
        for library in try lddPaths("/usr/bin/ls") where !library.contains("libpcre2") {
            try stage(library, into: dir.path)
        }
        // The host has libpcre2-8.so.0; the root does not, and the host's copy must not be used.
        #expect(throws: ImageError.missingLibrary(binary: "/lib/x86_64-linux-gnu/libselinux.so.1", library: "libpcre2-8.so.0",
                                                  searched: ELFClosure.defaultSearchDirectories)) {
            try ELFClosure(root: dir.path).resolve(binaries: ["/usr/bin/ls"])
        }
        #expect(throws: ImageError.missingPath(root: dir.path, path: "/usr/bin/nothing")) {
            try ELFClosure(root: dir.path).resolve(binaries: ["/usr/bin/nothing"])
        }
    }

    @Test func symlinksCannotEscapeTheRoot() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let root = StagingRoot(dir.path)
        try dir.write("lib/real.so", "inside")
        try FileSystem.makeDirectories(dir.path + "/a/b")
        #expect(symlink("../../../../../../../../lib/real.so", dir.path + "/a/b/up.so") == 0)
        #expect(symlink("/lib/real.so", dir.path + "/a/abs.so") == 0)
        #expect(try root.resolve("/a/b/up.so")?.path == "/lib/real.so")
        #expect(try root.resolve("/a/abs.so") == StagingRoot.Resolution(path: "/lib/real.so", symlinks: ["/a/abs.so"]))
        #expect(try root.resolve("/../../lib/real.so")?.path == "/lib/real.so")
        #expect(try root.resolve("/etc/passwd") == nil, "the host's /etc/passwd is not visible")
        #expect(symlink("loop2", dir.path + "/loop1") == 0)
        #expect(symlink("loop1", dir.path + "/loop2") == 0)
        #expect(throws: ImageError.self) { try root.resolve("/loop1") }
    }

    /// `$ORIGIN` runpaths, and a non-ELF file earlier in the search path skipped as the loader does.
    @Test func runpathWithOriginAndSkippedCandidates() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let root = dir.path + "/root"
        try dir.write("answer.c", "int answer(void) { return 42; }\n")
        try dir.write("app.c", "int answer(void);\nint main(void) { return answer() == 42 ? 0 : 1; }\n")
        try FileSystem.makeDirectories(root + "/opt/app/lib")
        try FileSystem.makeDirectories(root + "/opt/app/bin")
        var result = try runTool("clang", ["-shared", "-fPIC", "-o", root + "/opt/app/lib/libanswer.so.1", dir.path + "/answer.c",
                                           "-Wl,-soname,libanswer.so.1"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(symlink("libanswer.so.1", root + "/opt/app/lib/libanswer.so") == 0)
        result = try runTool("clang", ["-o", root + "/opt/app/bin/app", dir.path + "/app.c", "-L", root + "/opt/app/lib",
                                       "-lanswer", "-Wl,--enable-new-dtags", "-Wl,-rpath,$ORIGIN/../bad:$ORIGIN/../lib"])
        #expect(result.status == 0, "\(result.stderr)")
        try dir.write("root/opt/app/bad/libanswer.so.1", "not an ELF file")
        for library in try lddPaths("/usr/bin/true") { try stage(library, into: root) }
        let closure = try ELFClosure(root: root).resolve(binaries: ["/opt/app/bin/app"])
        #expect(closure.resolved["libanswer.so.1"] == "/opt/app/lib/libanswer.so.1")
        #expect(closure.paths.contains("/lib/x86_64-linux-gnu/libc.so.6"))
        #expect(!closure.paths.contains("/opt/app/bad/libanswer.so.1"))
    }
}

import Foundation
import Testing
@testable import KilnManifest

/// `files:` entries: sources confined to the manifest's directory tree, modes kept, control bytes in paths refused.
struct FileSourceTests {
    let loader = ManifestLoaderTests()

    func errors(_ path: String, allowHostFiles: Bool = false) -> [ManifestError] {
        do { _ = try ManifestLoader.load(path, allowHostFiles: allowHostFiles); return [] } catch let e as ManifestErrors { return e.errors } catch let e as ManifestError {
            return [e]
        } catch { return [] }
    }

    func manifest(_ files: String) throws -> (path: String, directory: String) {
        let path = try loader.write("apiVersion: kiln/v1\nname: r\nbase: debian-cloud\nfiles:\n" + files)
        return (path, (path as NSString).deletingLastPathComponent)
    }

    @Test func sourcesOutsideTheManifestsTreeAreRefusedAtTheirLine() throws {
        let outside = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-secret-\(UUID().uuidString)").path
        try "secret\n".write(toFile: outside, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: outside) }
        let (path, directory) = try manifest("""
          - { path: /a, source: \(outside) }
          - { path: /b, source: ../\((outside as NSString).lastPathComponent) }
          - { path: /c, source: link }
          - { path: /d, source: sub/../inside.txt }
        """)
        try FileManager.default.createSymbolicLink(atPath: directory + "/link", withDestinationPath: outside)
        try "inside\n".write(toFile: directory + "/inside.txt", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: directory + "/sub", withIntermediateDirectories: true)
        let found = errors(path)
        #expect(found.map(\.location.line) == [5, 6, 7], "\(found)")
        #expect(found.allSatisfy { $0.message.contains("outside the manifest's directory") && $0.message.contains("--allow-host-files") }, "\(found)")
        // The person running the build may opt in.
        let spec = try ManifestLoader.load(path, allowHostFiles: true)
        #expect(spec.files.map(\.contents) == [Array("secret\n".utf8), Array("secret\n".utf8), Array("secret\n".utf8), Array("inside\n".utf8)])
    }

    @Test func aSourceKeepsItsModeUnlessTheManifestGivesOne() throws {
        let (path, directory) = try manifest("""
          - { path: /etc/app.conf, source: app.conf }
          - { path: /etc/app.key, source: app.conf, mode: "0600" }
          - { path: /etc/inline, content: "x" }
        """)
        try "k=v\n".write(toFile: directory + "/app.conf", atomically: true, encoding: .utf8)
        #expect(chmod(directory + "/app.conf", 0o640) == 0)
        let spec = try ManifestLoader.load(path)
        #expect(spec.files.map(\.mode) == [0o640, 0o600, 0o644])
    }

    @Test func aSourceThatIsNotARegularFileIsRefused() throws {
        let (path, directory) = try manifest("  - { path: /x, source: fifo }\n")
        #expect(mkfifo(directory + "/fifo", 0o600) == 0)
        let found = errors(path)
        #expect(found.map(\.message) == ["source '\(directory)/fifo' is not a regular file"], "\(found)")
    }

    @Test func controlBytesInAPathAreRefused() throws {
        let (path, _) = try manifest("""
          - { path: "/etc/a\\0b", content: "x" }
          - { path: "/etc/a\\nb", content: "x" }
          - { path: "/etc/a\\x7fb", content: "x" }
          - { path: "/etc/ok", content: "x" }
        """)
        let found = errors(path)
        #expect(found.map(\.message) == [
            "file path contains the control character U+0000; image paths are printable text",
            "file path contains the control character U+000A; image paths are printable text",
            "file path contains the control character U+007F; image paths are printable text",
        ], "\(found)")
        #expect(found.map(\.location.line) == [5, 6, 7])
    }
}

/// `base:` resolves from the manifest's directory upwards, from Kiln's own Images/, or as a path.
struct BaseResolutionTests {
    func directory() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-base-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir + "/a/b/c", withIntermediateDirectories: true)
        return dir
    }
    let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let manifest = "apiVersion: kiln/v1\nname: r\nbase: BASE\n"

    @Test func aBaseIsFoundInAnyDirectoryAboveTheManifest() throws {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/Images", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: repo.appendingPathComponent("Images/debian-cloud.yaml").path, toPath: dir + "/Images/mine.yaml")
        try manifest.replacingOccurrences(of: "BASE", with: "mine").write(toFile: dir + "/a/b/c/m.yaml", atomically: true, encoding: .utf8)
        #expect(try ManifestLoader.load(dir + "/a/b/c/m.yaml").basePath == dir + "/Images/mine.yaml")
    }

    @Test func anAbsoluteOrRelativeBasePathIsTakenAsGiven() throws {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.copyItem(atPath: repo.appendingPathComponent("Images/debian-cloud.yaml").path, toPath: dir + "/a/base.yaml")
        try manifest.replacingOccurrences(of: "BASE", with: dir + "/a/base.yaml").write(toFile: dir + "/a/b/abs.yaml", atomically: true, encoding: .utf8)
        #expect(try ManifestLoader.load(dir + "/a/b/abs.yaml").basePath == dir + "/a/base.yaml")
        try manifest.replacingOccurrences(of: "BASE", with: "../base.yaml").write(toFile: dir + "/a/b/rel.yaml", atomically: true, encoding: .utf8)
        #expect(try ManifestLoader.load(dir + "/a/b/rel.yaml").basePath == dir + "/a/base.yaml")
        try manifest.replacingOccurrences(of: "BASE", with: dir + "/a/none.yaml").write(toFile: dir + "/a/b/none.yaml", atomically: true, encoding: .utf8)
        do { _ = try ManifestLoader.load(dir + "/a/b/none.yaml"); Issue.record("expected an error") } catch let e as ManifestErrors {
            #expect(e.errors.map(\.message) == ["no base image at '\(dir)/a/none.yaml'"])
        }
    }
}

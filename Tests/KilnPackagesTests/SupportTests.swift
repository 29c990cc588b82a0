import Foundation
import Testing
@testable import KilnPackages

@Suite("subprocess and progress")
struct SupportTests {
    @Test func subprocessCollectsOutputAndStatus() throws {
        let result = try Subprocess.run(["sh", "-c", "echo out; echo err >&2; exit 3"])
        #expect(result.status == 3)
        #expect(result.stdout == "out\n")
        #expect(result.stderr == "err\n")
        #expect(throws: PackageError.self) { try Subprocess.run(["kiln-no-such-tool-here"]) }
    }

    @Test func subprocessIsKilledAtItsDeadline() throws {
        #expect(throws: PackageError.tool(name: "sleep", message: "still running after 1 s; killed")) {
            try Subprocess.run(["sleep", "30"], timeout: 1)
        }
    }

    @Test func jsonLinesProgressWritesOneLinePerCompletedItem() throws {
        let directory = try makeTempDirectory("progress")
        defer { removeTree(directory) }
        let path = directory + "/progress.jsonl"
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        let handle = try #require(FileHandle(forWritingAtPath: path))
        let reporter = JSONLinesProgress(handle: handle)
        let tracker = ProgressTracker(reporter: reporter, totalBytes: 300, totalItems: 2)
        tracker.bytes(50, item: 0, name: "a")
        tracker.completed(item: 0, size: 100, name: "a")
        tracker.bytes(100, item: 1, name: "b")
        tracker.completed(item: 1, size: 200, name: "b")
        reporter.finish(success: true)
        try handle.close()
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 4)
        let last = try JSONSerialization.jsonObject(with: Data(lines[2].utf8)) as? [String: Any]
        #expect(last?["completedBytes"] as? Int == 300)
        #expect(last?["completedItems"] as? Int == 2)
        #expect(lines[3] == #"{"event":"finished","success":true}"#)
    }

    @Test func cacheDirectoryFollowsXDG() {
        let directory = PackageCache.defaultDirectory()
        if let xdg = ProcessInfo.processInfo.environment["XDG_CACHE_HOME"], xdg.hasPrefix("/") {
            #expect(directory == xdg + "/kiln")
        } else {
            #expect(directory.hasSuffix("/.cache/kiln"))
        }
    }
}

import Foundation
import Logging
@testable import KilnPackages

/// The signed test repository built once per test run by Helpers/make-test-repo.sh (real dpkg-deb, xz, gpg).
final class TestRepository: Sendable {
    let root: String
    var keyring: String { root + "/keyring.gpg" }
    var armoredKeyring: String { root + "/keyring.asc" }

    private init(root: String) {
        self.root = root
    }

    static let shared: Result<TestRepository, Error> = Result {
        let root = NSTemporaryDirectory() + "kiln-pkgs-repo-\(getpid())"
        removeTree(root)
        let status = try runTool("bash", [helpersDirectory + "/make-test-repo.sh", root])
        guard status == 0 else { throw PackageError.tool(name: "make-test-repo.sh", message: "exited \(status)") }
        return TestRepository(root: root)
    }

    static func get() throws -> TestRepository { try shared.get() }

    /// Sources pointing at `repo` (good, otherkey, tampered, badhash) served by `server` in `mode`.
    func sources(_ server: RepoServer, mode: String = "ok", repo: String = "good", keyring: String? = nil,
                 suites: [String] = ["bookworm", "bookworm-updates"]) -> [AptSource] {
        [AptSource(uris: [server.base(mode: mode, repo: repo)], suites: suites, components: ["main"],
                   architectures: ["amd64"], keyring: keyring ?? self.keyring)]
    }
}

/// Helpers/repo-server.py on 127.0.0.1 at a free port, stopped (by its pid) when the value goes away. It also
/// stops itself after its lifetime, so a crashed test leaves nothing behind.
final class RepoServer: @unchecked Sendable {
    let port: Int
    let logPath: String
    private let process: Process

    init(root: String, hangSeconds: Int = 30) throws {
        logPath = NSTemporaryDirectory() + "kiln-pkgs-server-\(UUID().uuidString.prefix(8)).log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", helpersDirectory + "/repo-server.py", root, "--lifetime", "240",
                             "--hang", "\(hangSeconds)"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle(forWritingAtPath: logPath)
        try process.run()
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            line += chunk
        }
        guard let port = Int(String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) else {
            process.terminate()
            throw PackageError.tool(name: "repo-server.py", message: "did not report a port")
        }
        self.port = port
    }

    deinit { stop() }

    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGTERM)
            let deadline = Date().addingTimeInterval(3)
            while process.isRunning && Date() < deadline { usleep(20_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(atPath: logPath)
    }

    func base(mode: String, repo: String) -> String {
        "http://127.0.0.1:\(port)/\(mode)/\(repo)"
    }

    /// Request lines the server logged whose path contains `fragment`.
    func requests(containing fragment: String) -> [String] {
        let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        return log.split(separator: "\n").filter { $0.contains("\"GET ") && $0.contains(fragment) }.map(String.init)
    }
}

/// Short limits so failure paths finish in seconds.
let testOptions = DownloadOptions(connectTimeout: 5, lowSpeedLimit: 1000, lowSpeedTime: 2, attempts: 3,
                                  initialBackoff: 0.1, maxBackoff: 0.2)

let testLogger = Logger(label: "kiln.packages.tests")

/// The files in a cache's debs/ directory, partials included.
func cachedFiles(_ cache: PackageCache) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: cache.directory + "/debs")) ?? []).sorted()
}

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
        removeStaleRepositories()
        let root = NSTemporaryDirectory() + "kiln-pkgs-repo-\(getpid())"
        removeTree(root)
        let status = try runTool("bash", [helpersDirectory + "/make-test-repo.sh", root])
        guard status == 0 else { throw PackageError.tool(name: "make-test-repo.sh", message: "exited \(status)") }
        return TestRepository(root: root)
    }

    /// Repositories left by earlier test processes that have exited.
    private static func removeStaleRepositories() {
        let temp = NSTemporaryDirectory()
        for name in (try? FileManager.default.contentsOfDirectory(atPath: temp)) ?? [] where name.hasPrefix("kiln-pkgs-repo-") {
            if let pid = Int32(name.dropFirst("kiln-pkgs-repo-".count)), kill(pid, 0) != 0, errno == ESRCH {
                removeTree(temp + name)
            }
        }
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
    private let lock = NSLock()
    private var pid: pid_t

    init(root: String, hangSeconds: Int = 30) throws {
        logPath = NSTemporaryDirectory() + "kiln-pkgs-server-\(UUID().uuidString.prefix(8)).log"
        let log = open(logPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        var fds: [Int32] = [0, 0]
        guard log >= 0, pipe(&fds) == 0 else { throw PackageError.io(path: logPath, message: "cannot set up server") }
        defer {
            close(log)
            close(fds[0])
        }
        pid = try Subprocess.spawn(["python3", helpersDirectory + "/repo-server.py", root, "--lifetime", "240",
                                    "--hang", "\(hangSeconds)"], stdout: fds[1], stderr: log, closeInChild: [fds[0]])
        close(fds[1])
        // The first line of stdout is the port; wait at most 10 s for it.
        var line = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 64)
        let deadline = Date().addingTimeInterval(10)
        while !line.contains(UInt8(ascii: "\n")) && Date() < deadline {
            var poller = pollfd(fd: fds[0], events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 200) > 0 else { continue }
            let count = buffer.withUnsafeMutableBytes { read(fds[0], $0.baseAddress, $0.count) }
            if count <= 0 { break }
            line += buffer[0..<count]
        }
        guard let port = Int(String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) else {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            throw PackageError.tool(name: "repo-server.py", message: "did not report a port")
        }
        self.port = port
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(atPath: logPath)
    }

    /// Stops the server (only the process this value started, by its pid).
    func stop() {
        lock.lock()
        defer { lock.unlock() }
        guard pid > 0 else { return }
        kill(pid, SIGTERM)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        pid = 0
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

import Foundation

/// One pinned package in a lock file: enough to fetch and verify it again without any index.
public struct LockedPackage: Codable, Sendable, Hashable {
    public var name: String
    public var version: String
    public var architecture: String
    /// The pool path, relative to a repository base URI.
    public var filename: String
    public var size: Int
    public var sha256: String
    /// The suite whose index listed it, so the right repository is asked first.
    public var suite: String

    public init(name: String, version: String, architecture: String, filename: String, size: Int, sha256: String,
                suite: String = "") {
        self.name = name
        self.version = version
        self.architecture = architecture
        self.filename = filename
        self.size = size
        self.sha256 = sha256
        self.suite = suite
    }
}

/// The pinned inputs of a build, written next to the manifest as `<name>.lock` (like Cargo.lock): pretty JSON
/// with sorted keys and packages sorted by name, so a change shows as a small diff.
public struct LockFile: Codable, Sendable, Equatable {
    /// The format version of this file.
    public var lockVersion: Int
    /// SOURCE_DATE_EPOCH for the build: the newest `Date:` of the Release files used.
    public var sourceDateEpoch: Int
    public var suites: [String]
    public var packages: [LockedPackage]

    public init(sourceDateEpoch: Int, suites: [String], packages: [LockedPackage]) {
        lockVersion = 1
        self.sourceDateEpoch = sourceDateEpoch
        self.suites = suites.sorted()
        self.packages = packages.sorted { ($0.name, $0.version) < ($1.name, $1.version) }
    }

    /// The lock for `records` resolved from `index`.
    public init(index: PackageIndex, records: [PackageRecord]) {
        self.init(sourceDateEpoch: index.sourceDateEpoch, suites: index.suites, packages: records.map(\.locked))
    }

    /// `Appliances/router.yaml` → `Appliances/router.lock`.
    public static func path(forManifest manifest: String) -> String {
        let url = URL(fileURLWithPath: manifest)
        return url.deletingPathExtension().appendingPathExtension("lock").path
    }

    public static func read(_ path: String) throws -> LockFile {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw PackageError.lockFile(path: path, message: "cannot read lock file")
        }
        let lock: LockFile
        do {
            lock = try JSONDecoder().decode(LockFile.self, from: data)
        } catch let DecodingError.keyNotFound(key, context) {
            throw PackageError.lockFile(path: path, message: "missing key '\(key.stringValue)' at \(Self.where(context))")
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context) {
            throw PackageError.lockFile(path: path, message: "wrong type at \(Self.where(context))")
        } catch {
            throw PackageError.lockFile(path: path, message: "not valid JSON: \(error.localizedDescription)")
        }
        guard lock.lockVersion == 1 else {
            throw PackageError.lockFile(path: path, message: "unsupported lockVersion \(lock.lockVersion); expected 1")
        }
        for package in lock.packages where !isSHA256Hex(package.sha256) || package.size < 0 {
            throw PackageError.lockFile(path: path, message: "package \(package.name): bad sha256 or size")
        }
        return lock
    }

    /// The exact bytes `write(to:)` produces.
    public func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self) + Data("\n".utf8)
    }

    /// Writes to a temporary file beside `path` and renames it over `path`.
    public func write(to path: String) throws {
        let data: Data
        do {
            data = try encoded()
        } catch {
            throw PackageError.lockFile(path: path, message: "cannot encode: \(error.localizedDescription)")
        }
        try writeAtomically(data, to: path)
    }

    private static func `where`(_ context: DecodingError.Context) -> String {
        let path = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        return path.isEmpty ? "top level" : path
    }
}

/// Writes `data` to `path` through a temporary file in the same directory and rename(2).
func writeAtomically(_ data: Data, to path: String) throws {
    let directory = (path as NSString).deletingLastPathComponent
    let temp = (directory.isEmpty ? "." : directory) + "/.\((path as NSString).lastPathComponent).\(getpid()).tmp"
    guard FileManager.default.createFile(atPath: temp, contents: data) else {
        throw PackageError.io(path: temp, message: "cannot write")
    }
    guard rename(temp, path) == 0 else {
        let message = String(cString: strerror(errno))
        unlink(temp)
        throw PackageError.io(path: path, message: "rename failed: \(message)")
    }
}

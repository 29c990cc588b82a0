import Foundation
import KilnImage

/// A built image directory (`out/<name>/`) about to be deployed, with its build report and its test record.
public struct DeployImage: Sendable {
    public let directory: String
    public let info: BuildInfo

    public init(directory: String) throws {
        self.directory = directory
        self.info = try BuildInfo.read(directory: directory)
    }

    public init(directory: String, info: BuildInfo) { self.directory = directory; self.info = info }

    public func path(_ file: String) -> String { directory + "/" + file }

    /// The files a boot mode needs: kernel + initramfs for direct boot, the disk image for UEFI.
    public func files(for boot: DeployProfile.BootMode) throws -> [String] {
        switch boot {
        case .direct: return ["vmlinuz", "initramfs.cpio.zst"]
        case .uefi:
            for f in ["disk.qcow2", "disk.raw"] where info.artifact(f) != nil { return [f] }
            throw DeployError.missingArtifact(directory: directory, file: "disk.qcow2")
        }
    }

    /// The hash of each file as it is on disk now, checked against build.json and, unless `allowUntested`,
    /// against a passing `tested.json`. Returns file → sha256 of exactly what will be deployed.
    public func verify(_ files: [String], allowUntested: Bool) throws -> [String: String] {
        var actual: [String: String] = [:]
        for file in files {
            guard let built = info.artifact(file) else { throw DeployError.missingArtifact(directory: directory, file: file) }
            let hash: String
            do { hash = try Hashing.sha256(file: path(file)).sha256 } catch {
                throw DeployError.missingArtifact(directory: directory, file: file)
            }
            if hash != built.sha256 {
                throw DeployError.hashMismatch(artifact: path(file), expected: built.sha256, actual: hash, source: path(BuildInfo.fileName))
            }
            actual[file] = hash
        }
        if allowUntested { return actual }
        let record = try TestedRecord.read(directory: directory)
        guard record.passed else {
            throw DeployError.untested(directory: directory, reason: "the last test (\(record.topology), \(record.date)) failed")
        }
        for file in files {
            guard let tested = record.artifacts[file] else {
                throw DeployError.untested(directory: directory, reason: "\(file) was not booted by the last test (\(record.topology))")
            }
            if tested != actual[file] {
                throw DeployError.hashMismatch(artifact: path(file), expected: tested, actual: actual[file] ?? "",
                                               source: path(TestedRecord.fileName))
            }
        }
        return actual
    }

    /// The guest NICs in image order, each with its MAC (derived from the domain name when the manifest gave none).
    public func nics(domain: String) -> [(name: String, mac: String)] {
        info.nics.map { ($0.name, $0.mac ?? DeployImage.derivedMAC(domain: domain, nic: $0.name)) }
    }

    /// A stable locally administered MAC in QEMU's 52:54:00 range, from the domain and NIC names.
    public static func derivedMAC(domain: String, nic: String) -> String {
        let digest = Hashing.sha256(domain + "/" + nic)
        let bytes = stride(from: 0, to: 6, by: 2).map { i -> String in
            let start = digest.index(digest.startIndex, offsetBy: i)
            return String(digest[start..<digest.index(start, offsetBy: 2)])
        }
        return "52:54:00:" + bytes.joined(separator: ":")
    }
}

/// `out/<name>/tested.json`, written by `kiln test`: whether the test passed and the SHA-256 of what it booted.
public struct TestedRecord: Decodable, Sendable {
    public var topology: String
    public var passed: Bool
    public var artifacts: [String: String]
    public var date: String

    public static let fileName = "tested.json"

    public static func read(directory: String) throws -> TestedRecord {
        let path = directory + "/" + fileName
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DeployError.untested(directory: directory, reason: "no \(fileName): this image was never tested")
        }
        do { return try JSONDecoder().decode(TestedRecord.self, from: data) } catch {
            throw DeployError.untested(directory: directory, reason: "\(fileName) is unreadable (\(error))")
        }
    }
}

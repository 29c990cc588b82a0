import Foundation

/// `out/<name>/build.json`: what went in, what came out, and how long each step took. `kiln boot`, `kiln test`
/// and `kiln deploy` read it to find the artifacts, the kernel command line and the NICs.
///
/// Everything except `timings` and `cache` is a function of the inputs; the artifacts themselves are
/// bit-for-bit reproducible.
public struct BuildInfo: Codable, Sendable {
    public struct Artifact: Codable, Sendable, Equatable {
        public var file: String
        public var sha256: String
        public var size: Int
    }
    public struct Input: Codable, Sendable, Equatable {
        public var kind: String
        public var name: String
        public var version: String?
        public var sha256: String
    }
    public struct NIC: Codable, Sendable, Equatable {
        public var name: String
        public var mac: String?
    }
    public struct Layer: Codable, Sendable, Equatable {
        public var name: String
        public var sha256: String
        public var size: Int
        public var reused: Bool
    }

    /// A hypervisor the image boots under as its first domain (a Xen host): its file among the artifacts and
    /// its command line. The kernel and initramfs are then the hypervisor's modules, with `cmdline`.
    public struct Hypervisor: Codable, Sendable, Equatable {
        public var file: String
        public var cmdline: String
    }

    /// A software bridge of the image and the NICs in it (a Xen host's guests' vifs join these).
    public struct Bridge: Codable, Sendable, Equatable {
        public var name: String
        public var members: [String]
    }

    public var name: String
    public var hypervisor: Hypervisor? = nil
    /// The image's bridges, when it has any.
    public var bridges: [Bridge]? = nil
    public var kernelRelease: String
    public var cmdline: String
    public var sourceDateEpoch: Int
    public var nics: [NIC]
    public var artifacts: [Artifact]
    public var inputs: [Input]
    public var layers: [Layer]
    /// Bytes: `initramfs`, `kernel`, `total`.
    public var sizes: [String: Int]
    /// Seconds per build step.
    public var timings: [String: Double]

    public static let fileName = "build.json"

    public func artifact(_ file: String) -> Artifact? { artifacts.first { $0.file == file } }

    public static func read(directory: String) throws -> BuildInfo {
        let path = directory + "/" + fileName
        guard let data = FileManager.default.contents(atPath: path) else {
            throw BuildError.notBuilt(directory: directory)
        }
        do { return try JSONDecoder().decode(BuildInfo.self, from: data) } catch {
            throw BuildError.corruptOutput(path: path, reason: "\(error)")
        }
    }

    func encoded() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(self)) + [0x0A]
    }
}

/// Why a build stopped. Each names the thing to fix.
public enum BuildError: Error, CustomStringConvertible {
    case notBuilt(directory: String)
    case corruptOutput(path: String, reason: String)
    case missingInit(searched: [String])
    case missingExecutable(name: String, searched: [String])
    case kernel(package: String, reason: String)
    case lockOutdated(lock: String, missing: [String])
    case tooLarge(artifact: String, size: Int, limit: Int)

    public var description: String {
        switch self {
        case let .notBuilt(d): return "\(d) has no build.json; run `kiln build` first"
        case let .corruptOutput(p, r): return "\(p) is unreadable: \(r)"
        case let .missingInit(s): return "kiln-init not found (looked in \(s.joined(separator: ", "))); build it with Scripts/build or pass --init"
        case let .missingExecutable(n, s): return "\(n) not found (looked in \(s.joined(separator: ", "))); this appliance needs it: build it with Scripts/build"
        case let .kernel(p, r): return "kernel package \(p): \(r)"
        case let .lockOutdated(l, m): return "\(l) does not pin \(m.joined(separator: ", ")); run `kiln lock --update` (or build without --offline)"
        case let .tooLarge(a, s, l): return "\(a) is \(s) bytes, over the \(l)-byte budget"
        }
    }
}

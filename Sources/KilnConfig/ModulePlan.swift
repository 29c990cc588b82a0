/// The kernel modules kiln-init loads, in `/etc/kiln/modules`: a few lines of text beside config.json, so module
/// loading starts before the configuration is decoded (under TCG decoding takes tens of milliseconds).
///
///     # comment
///     release 6.1.0-57-cloud-amd64
///     kernel/drivers/virtio/virtio_ring.ko
///     kernel/drivers/virtio/virtio.ko 0
///     kernel/drivers/virtio/virtio_pci.ko 0,1
///
/// A module line is its path under `/lib/modules/<release>/` and, after a space, the positions (0-based, among
/// module lines) of the earlier modules that must be loaded before it.
public struct ModulePlan: Sendable, Equatable {
    public static let path = "/etc/kiln/modules"

    public struct Module: Sendable, Equatable {
        public var path: String
        public var prerequisites: [Int]
        public init(path: String, prerequisites: [Int] = []) { self.path = path; self.prerequisites = prerequisites }
    }

    public struct ParseError: Error, Equatable, CustomStringConvertible {
        public var line: Int
        public var message: String
        public var description: String { "\(ModulePlan.path):\(line): \(message)" }
    }

    /// `uname -r` of the image's kernel.
    public var release: String
    /// Dependencies first.
    public var modules: [Module]

    public init(release: String, modules: [Module]) { self.release = release; self.modules = modules }

    /// Absolute path of the module file at `index`.
    public func file(_ index: Int) -> String { "/lib/modules/\(release)/\(modules[index].path)" }

    public var text: String {
        var lines = ["# Kernel modules for kiln-init: path, then the positions of the modules to load before it.",
                     "release \(release)"]
        for m in modules {
            lines.append(m.prerequisites.isEmpty ? m.path : m.path + " " + m.prerequisites.map(String.init).joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    public init(parsing text: String) throws(ParseError) {
        var release: String?
        var modules: [Module] = []
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = number + 1
            if raw.isEmpty || raw.hasPrefix("#") { continue }
            let fields = raw.split(separator: " ")
            if fields.first == "release" {
                guard fields.count == 2, release == nil else { throw ParseError(line: line, message: "expected one 'release <uname -r>' line") }
                release = String(fields[1])
                continue
            }
            guard fields.count <= 2, let path = fields.first, path.hasSuffix(".ko"), !path.hasPrefix("/"), !path.contains("..") else {
                throw ParseError(line: line, message: "expected '<module>.ko [prerequisites]'")
            }
            var prerequisites: [Int] = []
            if fields.count == 2 {
                for item in fields[1].split(separator: ",") {
                    guard let index = Int(item), index >= 0, index < modules.count else {
                        throw ParseError(line: line, message: "prerequisite '\(item)' is not an earlier module")
                    }
                    prerequisites.append(index)
                }
            }
            modules.append(Module(path: String(path), prerequisites: prerequisites))
        }
        guard let release else { throw ParseError(line: 1, message: "no 'release' line") }
        self.init(release: release, modules: modules)
    }
}

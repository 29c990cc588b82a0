/// The kernel modules kiln-init loads, in `/etc/kiln/modules`: a few lines of text beside config.json, so module
/// loading starts before the configuration is decoded (under TCG decoding takes tens of milliseconds).
///
///     # comment
///     release 6.1.0-57-cloud-amd64
///     kernel/drivers/virtio/virtio_ring.ko
///     kernel/drivers/virtio/virtio.ko 0
///     kernel/drivers/virtio/virtio_pci.ko 0,1 @kvm
///     kernel/drivers/net/xen-netfront.ko - @xen
///
/// A module line is its path under `/lib/modules/<release>/` and, after a space, the positions (0-based, among
/// module lines) of the earlier modules that must be loaded before it (`-` for none). A last field `@kvm`,
/// `@xen` or `@kvm,xen` loads the module only on those platforms; a module without one loads everywhere.
public struct ModulePlan: Sendable, Equatable {
    public static let path = "/etc/kiln/modules"

    public struct Module: Sendable, Equatable {
        public var path: String
        public var prerequisites: [Int]
        /// The platforms that load this module; empty for every platform.
        public var platforms: [Platform]
        public init(path: String, prerequisites: [Int] = [], platforms: [Platform] = []) {
            self.path = path; self.prerequisites = prerequisites; self.platforms = platforms
        }
        /// Whether kiln-init loads it on `platform`.
        public func loads(on platform: Platform) -> Bool { platforms.isEmpty || platforms.contains(platform) }
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
            let prerequisites = m.prerequisites.isEmpty ? "-" : m.prerequisites.map(String.init).joined(separator: ",")
            if m.platforms.isEmpty {
                lines.append(m.prerequisites.isEmpty ? m.path : m.path + " " + prerequisites)
            } else {
                lines.append(m.path + " " + prerequisites + " @" + m.platforms.map(\.rawValue).joined(separator: ","))
            }
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
            guard fields.count <= 3, let path = fields.first, path.hasSuffix(".ko"), !path.hasPrefix("/"), !path.contains("..") else {
                throw ParseError(line: line, message: "expected '<module>.ko [prerequisites] [@platforms]'")
            }
            var platforms: [Platform] = []
            if fields.count == 3 {
                guard fields[2].hasPrefix("@") else { throw ParseError(line: line, message: "expected '@<platform>[,<platform>]' as the third field") }
                for item in fields[2].dropFirst().split(separator: ",") {
                    guard let platform = Platform(rawValue: String(item)) else {
                        throw ParseError(line: line, message: "unknown platform '\(item)'; expected \(Platform.allCases.map(\.rawValue).joined(separator: " or "))")
                    }
                    platforms.append(platform)
                }
            }
            var prerequisites: [Int] = []
            if fields.count >= 2, fields[1] != "-" {
                for item in fields[1].split(separator: ",") {
                    guard let index = Int(item), index >= 0, index < modules.count else {
                        throw ParseError(line: line, message: "prerequisite '\(item)' is not an earlier module")
                    }
                    prerequisites.append(index)
                }
            }
            modules.append(Module(path: String(path), prerequisites: prerequisites, platforms: platforms))
        }
        guard let release else { throw ParseError(line: 1, message: "no 'release' line") }
        self.init(release: release, modules: modules)
    }
}

/// The hypervisor an image runs on, as far as its drivers go: `kvm` is every virtio machine (QEMU with KVM or
/// TCG, libvirt), `xen` a Xen domain (PV, PVH or HVM), whose NICs are netfront.
public enum Platform: String, Sendable, Equatable, Hashable, CaseIterable, Codable {
    case kvm, xen
}

import Glibc

/// A directory on the host that stands for the guest's `/`. Guest paths are resolved inside it: symlinks are
/// followed the way the guest kernel would follow them, with absolute targets and `..` clamped at the root, so
/// a lookup never reaches the host's own files.
public struct StagingRoot: Sendable {
    /// The host directory (no trailing slash).
    public let path: String

    /// The result of resolving a guest path.
    public struct Resolution: Sendable, Equatable {
        /// The resolved guest path (absolute, no symlinks in it except possibly the last component when the
        /// lookup did not follow it).
        public var path: String
        /// Guest paths of every symlink followed on the way, in order.
        public var symlinks: [String]
    }

    public init(_ path: String) {
        var trimmed = path
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
        self.path = trimmed
    }

    /// The host path of an already resolved guest path.
    public func hostPath(_ guestPath: String) -> String {
        let components = Self.components(guestPath)
        return components.isEmpty ? path : path + "/" + components.joined(separator: "/")
    }

    /// Splits a path into components, dropping empty and `.` components.
    static func components(_ path: String) -> [String] {
        path.split(separator: "/", omittingEmptySubsequences: true).map(String.init).filter { $0 != "." }
    }

    static func guestPath(_ components: [String]) -> String { "/" + components.joined(separator: "/") }

    /// Resolves `guestPath` inside the root. Returns nil when a component does not exist (unless
    /// `createDirectories`, which creates missing components as 0755 directories). `followLast: false` keeps a
    /// final symlink as is (an lstat-style lookup).
    public func resolve(_ guestPath: String, followLast: Bool = true, createDirectories: Bool = false) throws
        -> Resolution?
    {
        var pending = Array(Self.components(guestPath).reversed())
        var current = [String]()
        var symlinks = [String]()
        var hops = 0
        while let component = pending.popLast() {
            if component == ".." {
                if !current.isEmpty { current.removeLast() }
                continue
            }
            let candidate = current + [component]
            let host = path + "/" + candidate.joined(separator: "/")
            guard let st = FileSystem.lstat(host) else {
                guard createDirectories else { return nil }
                if mkdir(host, 0o755) != 0 && errno != EEXIST {
                    throw ImageError.system(operation: "mkdir", path: host, errno: errno)
                }
                current = candidate
                continue
            }
            let isLast = pending.isEmpty
            if FileSystem.isSymlink(st) && (!isLast || followLast) {
                hops += 1
                if hops > 40 {
                    throw ImageError.system(operation: "resolve", path: host, errno: ELOOP)
                }
                symlinks.append(Self.guestPath(candidate))
                let target = try FileSystem.readLink(host)
                if target.hasPrefix("/") { current = [] }
                pending += Self.components(target).reversed()
                continue
            }
            if !isLast && !FileSystem.isDirectory(st) {
                if createDirectories {
                    throw ImageError.system(operation: "mkdir", path: host, errno: ENOTDIR)
                }
                return nil
            }
            current = candidate
        }
        return Resolution(path: Self.guestPath(current), symlinks: symlinks)
    }
}

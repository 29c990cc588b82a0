import KilnManifest
import KilnPackages

/// Checks, before any build, that every package a manifest or its base names exists: in the lock file beside
/// the manifest when it pins the name, else in the cached repository index. Pure: the caller reads the lock and
/// the cache.
public enum PackageCheck {
    /// What the names were checked against, for the user to know how far a "valid" goes.
    public enum Basis: Equatable, Sendable {
        case lock(String)
        case cachedIndex
        case lockAndCachedIndex(String)
        /// Neither is available: the names were not checked.
        case none
    }

    /// Problems for unknown names, each at the line that names the package, and what the check relied on.
    /// A name the lock does not pin may be newly added: only the cached index can tell it is unknown.
    public static func check(_ spec: ApplianceSpec, lock: LockFile?, lockPath: String,
                             index: () -> PackageIndex?) -> (problems: [ManifestError], basis: Basis) {
        let pinned = Set(lock?.packages.map(\.name) ?? [])
        let unpinned = spec.packages.filter { !pinned.contains($0) }
        if lock != nil && unpinned.isEmpty { return ([], .lock(lockPath)) }
        guard let index = index() else {
            return ([], lock == nil ? .none : .lock(lockPath))
        }
        let problems = unpinned.filter { !index.knows($0) }.map { name -> ManifestError in
            let location = spec.packageLocations[name] ?? SourceLocation(file: spec.manifestPath, line: 1, column: 1)
            let hint = index.suggestions(for: name)
            var message = "unknown package '\(name)': no cached package index lists it" + (lock == nil ? "" : " and \(lockPath) does not pin it")
            if !hint.isEmpty { message += " (did you mean \(hint.map { "'\($0)'" }.joined(separator: ", "))?)" }
            return ManifestError(location: location, path: "packages", message: message)
        }
        return (problems.sorted { ($0.location.file, $0.location.line, $0.location.column) < ($1.location.file, $1.location.line, $1.location.column) },
                lock == nil ? .cachedIndex : .lockAndCachedIndex(lockPath))
    }
}

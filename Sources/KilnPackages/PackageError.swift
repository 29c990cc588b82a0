/// Every failure KilnPackages reports. Each case names the file, URL or package it is about, so a user can act on it.
public enum PackageError: Error, CustomStringConvertible, Sendable, Equatable {
    /// An apt sources file could not be read or holds a line Kiln cannot understand.
    case sourcesUnreadable(path: String, reason: String)
    /// No enabled `deb` source in the apt configuration carries the wanted distribution.
    case noSources(distribution: String, searched: [String])
    /// A transfer failed (timeout, reset, refused); `attempts` is how often it was tried.
    case transfer(url: String, package: String?, message: String, attempts: Int)
    /// The server answered with an HTTP error status.
    case httpStatus(url: String, package: String?, status: Int, attempts: Int)
    /// `gpgv` rejected the signature of a Release file.
    case badSignature(url: String, keyring: String, message: String)
    /// A Release file is missing a field or has one Kiln cannot parse.
    case malformedRelease(url: String, reason: String)
    /// The Release file does not list the index Kiln needs.
    case indexNotListed(url: String, path: String)
    /// A downloaded file's size differs from the one promised by the index.
    case sizeMismatch(package: String, url: String, expected: Int, actual: Int)
    /// A downloaded file's SHA-256 differs from the one promised by the index.
    case hashMismatch(package: String, url: String, expected: String, actual: String)
    /// A compressed index could not be decompressed.
    case decompression(path: String, message: String)
    /// A requested package is in no index.
    case packageNotFound(name: String, suggestions: [String])
    /// No alternative of a dependency exists in any index.
    case unsatisfiableDependency(package: String, dependency: String)
    /// A lock file could not be read, parsed or written.
    case lockFile(path: String, message: String)
    /// A local file operation failed.
    case io(path: String, message: String)
    /// A helper tool (gpgv, gpg) could not be run.
    case tool(name: String, message: String)

    public var description: String {
        switch self {
        case let .sourcesUnreadable(path, reason):
            return "\(path): \(reason)"
        case let .noSources(distribution, searched):
            let files = searched.isEmpty ? "no apt sources files found" : "searched " + searched.joined(separator: ", ")
            return "no enabled 'deb' source for distribution '\(distribution)' (\(files)); pass --mirror URL"
        case let .transfer(url, package, message, attempts):
            return "\(Self.subject(package))download of \(url) failed after \(attempts) attempt(s): \(message)"
        case let .httpStatus(url, package, status, attempts):
            return "\(Self.subject(package))\(url) returned HTTP \(status) (after \(attempts) attempt(s))"
        case let .badSignature(url, keyring, message):
            return "signature check of \(url) with keyring \(keyring) failed: \(message)"
        case let .malformedRelease(url, reason):
            return "\(url): malformed Release file: \(reason)"
        case let .indexNotListed(url, path):
            return "\(url) does not list \(path) (or its .xz/.gz form) in its SHA256 section"
        case let .sizeMismatch(package, url, expected, actual):
            return "package \(package): \(url) has size \(actual), expected \(expected); the download was discarded"
        case let .hashMismatch(package, url, expected, actual):
            return "package \(package): \(url) has SHA-256 \(actual), expected \(expected); the download was discarded"
        case let .decompression(path, message):
            return "\(path): cannot decompress: \(message)"
        case let .packageNotFound(name, suggestions):
            let hint = suggestions.isEmpty ? "" : " (did you mean \(suggestions.joined(separator: ", "))?)"
            return "package '\(name)' is not in any configured repository index\(hint)"
        case let .unsatisfiableDependency(package, dependency):
            return "package \(package): no alternative of dependency '\(dependency)' is available"
        case let .lockFile(path, message):
            return "\(path): \(message)"
        case let .io(path, message):
            return "\(path): \(message)"
        case let .tool(name, message):
            return "\(name): \(message)"
        }
    }

    private static func subject(_ package: String?) -> String {
        package.map { "package \($0): " } ?? ""
    }
}

/// Why a deploy stopped. Each case names the file, artifact, command or setting to fix.
public enum DeployError: Error, CustomStringConvertible, Equatable {
    case unreadable(path: String)
    case untested(directory: String, reason: String)
    case hashMismatch(artifact: String, expected: String, actual: String, source: String)
    case missingArtifact(directory: String, file: String)
    case nicMismatch(String)
    case command(argv: [String], status: Int32, stderr: String)
    case toolMissing(tool: String, hint: String)
    case notDeployed(domain: String)
    case noPrevious(domain: String)
    case timeout(domain: String, seconds: Double, console: String, tail: String)

    public var description: String {
        switch self {
        case let .unreadable(p): return "\(p): cannot read the file"
        case let .untested(d, r):
            return "\(d): \(r); run `kiln test` on a topology that boots this image, or pass --untested to deploy it anyway"
        case let .hashMismatch(a, e, x, s):
            return "\(a): sha256 \(x) does not match \(e) recorded in \(s); rebuild and re-test, or pass --untested"
        case let .missingArtifact(d, f): return "\(d)/\(f): missing; this format was not built (see `formats:` in the base image)"
        case let .nicMismatch(m): return m
        case let .command(argv, status, err):
            let tail = err.split(separator: "\n").suffix(5).joined(separator: "\n  ")
            return "`\(argv.joined(separator: " "))` exited with status \(status)" + (tail.isEmpty ? "" : ":\n  " + tail)
        case let .toolMissing(t, h): return "\(t) not found; \(h)"
        case let .notDeployed(d): return "no domain '\(d)' deployed by kiln on this host"
        case let .noPrevious(d): return "domain '\(d)' has no previous image to roll back to"
        case let .timeout(d, s, c, t):
            return "domain '\(d)' did not print READY within \(Int(s)) s (console \(c)); last lines:\n" + t
        }
    }
}

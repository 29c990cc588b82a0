import Foundation

/// Checks a clearsigned InRelease with `gpgv`, the way apt does, and returns only the text gpgv vouches for.
struct SignatureVerifier {
    /// Directory for scratch files (the verified output, a dearmored keyring).
    let workDirectory: String

    /// Runs `gpgv --keyring KEYRING --output VERIFIED INRELEASE`. Any failure names `url` and quotes gpgv.
    func verify(inRelease path: String, keyring: String, url: String) throws -> String {
        guard FileManager.default.isReadableFile(atPath: keyring) else {
            throw PackageError.badSignature(url: url, keyring: keyring, message: "keyring does not exist or is unreadable")
        }
        let output = workDirectory + "/verified-\(UUID().uuidString)"
        var dearmored: String?
        defer {
            unlink(output)
            if let dearmored { unlink(dearmored) }
        }
        var ring = keyring
        if keyring.hasSuffix(".asc") {
            let target = workDirectory + "/keyring-\(UUID().uuidString).gpg"
            dearmored = target
            let result = try run(["gpg", "--batch", "--yes", "--dearmor", "--output", target, keyring])
            guard result.status == 0 else {
                throw PackageError.badSignature(url: url, keyring: keyring, message: "cannot dearmor keyring: \(result.stderr)")
            }
            ring = target
        }
        let result = try run(["gpgv", "--keyring", ring, "--output", output, path])
        guard result.status == 0 else {
            let message = result.stderr.split(separator: "\n").filter { !$0.isEmpty }.joined(separator: "; ")
            throw PackageError.badSignature(url: url, keyring: keyring,
                                            message: message.isEmpty ? "gpgv exited \(result.status)" : message)
        }
        guard let data = FileManager.default.contents(atPath: output) else {
            throw PackageError.badSignature(url: url, keyring: keyring, message: "gpgv wrote no verified output")
        }
        return String(decoding: data, as: UTF8.self)
    }

    private func run(_ arguments: [String]) throws -> (status: Int32, stderr: String) {
        let result = try Subprocess.run(arguments, timeout: 120)
        if result.status == 127 {
            throw PackageError.tool(name: arguments[0], message: "not found on PATH (install gnupg / gpgv)")
        }
        return (result.status, result.stderr.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}

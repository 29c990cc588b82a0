import Foundation
import Logging

/// Where `xl` runs: on this machine (a dom0) or on a dom0 reached over SSH. Every step is a command line for
/// dom0's POSIX shell, so the two differ only in how a command reaches it.
public struct XenHost: Sendable {
    public enum Transport: Sendable, Equatable {
        case local
        /// `ssh [-p port] [-i identity] [-o option]… destination`
        case ssh(destination: String, port: Int?, identity: String?, options: [String])
    }
    public var transport: Transport
    /// Put before every command, e.g. `ip netns exec NS` to reach dom0 from a network namespace.
    public var prefix: [String] = []

    public init(transport: Transport) { self.transport = transport }

    /// `local`, or `ssh://[user@]host[:port]`.
    public init(uri: String, identity: String? = nil, sshOptions: [String] = []) throws {
        if uri == "local" { self.init(transport: .local); return }
        guard uri.hasPrefix("ssh://") else {
            throw DeployError.command(argv: ["--connect", uri], status: 2, stderr: "expected 'local' or 'ssh://[user@]host[:port]'")
        }
        var rest = String(uri.dropFirst("ssh://".count))
        if rest.hasSuffix("/") { rest.removeLast() }
        var port: Int?
        if let colon = rest.lastIndex(of: ":"), !rest[colon...].contains("]"),
           let p = Int(rest[rest.index(after: colon)...]) {
            port = p
            rest = String(rest[..<colon])
        }
        guard !rest.isEmpty, !rest.contains("/"), !rest.hasPrefix("-") else {
            throw DeployError.command(argv: ["--connect", uri], status: 2, stderr: "no host in '\(uri)'")
        }
        self.init(transport: .ssh(destination: rest, port: port, identity: identity, options: sshOptions))
    }

    /// The argv that runs `script` in dom0's shell.
    public func argv(_ script: String) -> [String] { prefix + hostArgv(script) }

    private func hostArgv(_ script: String) -> [String] {
        switch transport {
        case .local: return ["sh", "-c", script]
        case let .ssh(destination, port, identity, options):
            var argv = ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=20"]
            if let port { argv += ["-p", String(port)] }
            if let identity { argv += ["-i", identity] }
            for o in options { argv += ["-o", o] }
            return argv + [destination, "--", script]
        }
    }

    @discardableResult
    func run(_ script: String, input: String? = nil, timeout: Double = 120) throws -> String {
        let argv = argv(script)
        let r = try HostTool.run(argv, timeout: timeout, input: input)
        guard r.status == 0 else { throw DeployError.command(argv: argv, status: r.status, stderr: r.stderr.isEmpty ? r.stdout : r.stderr) }
        return r.stdout
    }

    /// Whether `script` exits 0 (a test, not an error).
    func succeeds(_ script: String) throws -> Bool {
        let r = try HostTool.run(argv(script), timeout: 120)
        if r.status == 255, case .ssh = transport { throw DeployError.command(argv: argv(script), status: r.status, stderr: r.stderr) }
        return r.status == 0
    }
}

/// Deploys images onto a Xen dom0 with `xl`, locally or over SSH, the way the libvirt path does on KVM: the
/// verified artifacts are uploaded by hash (`<directory>/<domain>/<sha12>.<file>`, checked with sha256sum on the
/// host), the domain is created from `<directory>/<domain>/current.cfg`, and READY is read from the guest
/// console that the host's xenconsoled logs. An upgrade keeps the replaced config as `previous.cfg` (and its
/// files) for `rollback`; `undefine` destroys the domain and removes its directory and console log. A deploy
/// that fails leaves the host as it was: the new domain is destroyed and what was uploaded for it removed.
public struct XenDeployer {
    public var host: XenHost
    public var logger: Logger
    /// Seconds to wait for READY after `xl create`.
    public var readyTimeout: Double

    public init(host: XenHost, logger: Logger, readyTimeout: Double = 120) {
        self.host = host; self.logger = logger; self.readyTimeout = readyTimeout
    }

    public struct Result: Sendable {
        public var domain: String
        public var artifacts: [(file: String, sha256: String)]
        public var readyAfter: Double
        public var config: String
    }

    public static func artifactPath(directory: String, domain: String, file: String, sha256: String) -> String {
        "\(directory)/\(domain)/\(sha256.prefix(12)).\(file)"
    }

    static func quoted(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }

    func domainDirectory(_ profile: DeployProfile, _ domain: String) -> String { profile.xen.directory + "/" + domain }

    func xl(_ args: String) -> String { "xl " + args }

    /// Destroys the domain if it runs; a domain that is not there is not an error.
    func destroyQuietly(_ name: String) { _ = try? host.run(xl("destroy \(Self.quoted(name))") + " 2>/dev/null; true") }

    /// Whether `xl` knows a domain of this name.
    func exists(_ domain: String) throws -> Bool { try host.succeeds(xl("list \(Self.quoted(domain))") + " >/dev/null 2>&1") }

    /// Uploads `local` to `remote` unless a file with that hash is there already; checks the hash on the host.
    func upload(_ local: String, to remote: String, sha256: String) throws {
        let q = Self.quoted(remote)
        if (try? host.run("sha256sum \(q) 2>/dev/null"))?.hasPrefix(sha256) == true { return }
        let size = (try? FileManager.default.attributesOfItem(atPath: local)[.size] as? Int) ?? 0
        logger.info("uploading \(local) to \(remote) (\(size) bytes)")
        let dir = Self.quoted(URL(fileURLWithPath: remote).deletingLastPathComponent().path)
        try host.run("mkdir -p \(dir) && cat > \(q).part && mv \(q).part \(q)", input: local, timeout: 600)
        let got = try host.run("sha256sum \(q)").split(separator: " ").first.map(String.init) ?? ""
        guard got == sha256 else {
            _ = try? host.run("rm -f \(q)")
            throw DeployError.hashMismatch(artifact: remote, expected: sha256, actual: got, source: "the upload")
        }
    }

    /// Uploads the artifacts and writes `<name>.cfg` text; returns the config.
    func prepare(image: DeployImage, profile: DeployProfile, hashes: [String: String]) throws -> XenConfig {
        let config = try XenConfig.plan(image: image, profile: profile, hashes: hashes)
        let name = config.name
        for a in config.artifacts {
            try upload(image.path(a.file), to: Self.artifactPath(directory: profile.xen.directory, domain: name, file: a.file, sha256: a.sha256),
                       sha256: a.sha256)
        }
        return config
    }

    /// Creates a domain that does not exist yet, then waits for READY.
    public func deploy(image: DeployImage, profile: DeployProfile, hashes: [String: String]) throws -> Result {
        let name = profile.name ?? image.info.name
        if try exists(name) {
            throw DeployError.command(argv: ["xl", "create"], status: 1,
                                      stderr: "domain '\(name)' already exists: use `kiln deploy xen upgrade`, or undefine it first")
        }
        let dir = domainDirectory(profile, name)
        let fresh = !(try host.succeeds("test -e \(Self.quoted(dir))"))
        do {
            let config = try prepare(image: image, profile: profile, hashes: hashes)
            try host.run("cat > \(Self.quoted(dir + "/current.cfg"))", inputText: config.text)
            return try start(config, profile: profile)
        } catch {
            // Leave the host as it was: no domain, and nothing of this deploy on disk.
            destroyQuietly(name)
            if fresh { _ = try? host.run("rm -rf \(Self.quoted(dir)) \(Self.quoted(consoleLog(profile, name)))") }
            throw error
        }
    }

    /// Replaces a deployed domain's image, keeping the replaced config and files for `rollback`. If the new image
    /// does not reach READY, the previous one is started again and the error reported.
    public func upgrade(image: DeployImage, profile: DeployProfile, hashes: [String: String]) throws -> Result {
        let name = profile.name ?? image.info.name
        let dir = domainDirectory(profile, name)
        guard try host.succeeds("test -f \(Self.quoted(dir + "/current.cfg"))") else { throw DeployError.notDeployed(domain: name) }
        let config = try prepare(image: image, profile: profile, hashes: hashes)
        try host.run("cd \(Self.quoted(dir)) && cp current.cfg previous.cfg.new && cat > current.cfg.new && mv previous.cfg.new previous.cfg && mv current.cfg.new current.cfg",
                     inputText: config.text)
        destroyQuietly(name)
        do {
            let result = try start(config, profile: profile)
            try removeUnreferenced(dir)
            return result
        } catch {
            logger.error("upgrade of \(name) failed; starting the previous image again: \(error)")
            _ = try? rollback(domain: name, profile: profile)
            throw error
        }
    }

    /// Starts the image an upgrade replaced: swaps `current.cfg` and `previous.cfg`.
    public func rollback(domain name: String, profile: DeployProfile) throws -> Result {
        let dir = domainDirectory(profile, name)
        guard try host.succeeds("test -f \(Self.quoted(dir + "/previous.cfg"))") else { throw DeployError.noPrevious(domain: name) }
        try host.run("cd \(Self.quoted(dir)) && mv previous.cfg swap.cfg && mv current.cfg previous.cfg && mv swap.cfg current.cfg")
        destroyQuietly(name)
        let text = try host.run("cat \(Self.quoted(dir + "/current.cfg"))")
        return try start(name: name, text: text, profile: profile)
    }

    /// Destroys the running domain (the appliance keeps no state worth a clean shutdown); its files stay.
    public func stop(domain name: String) throws {
        if try exists(name) { try host.run(xl("destroy \(Self.quoted(name))")) }
    }

    /// Destroys the domain and removes every file Kiln put on the host for it, and its console log.
    public func undefine(domain name: String, profile: DeployProfile) throws {
        let dir = domainDirectory(profile, name)
        guard try host.succeeds("test -d \(Self.quoted(dir))") || exists(name) else { throw DeployError.notDeployed(domain: name) }
        try stop(domain: name)
        try host.run("rm -rf \(Self.quoted(dir)) \(Self.quoted(consoleLog(profile, name)))")
    }

    /// The guest's console as xenconsoled logged it since the domain was created.
    public func console(domain name: String, profile: DeployProfile) throws -> String {
        try host.run("cat \(Self.quoted(consoleLog(profile, name))) 2>/dev/null; true")
    }

    /// The `# <file> sha256 <hash>` lines of the deployed configs: what runs (`current`) and what a rollback
    /// would start (`previous`).
    public func installed(domain name: String, profile: DeployProfile) throws -> [(role: String, file: String, sha256: String)] {
        let dir = domainDirectory(profile, name)
        var out: [(String, String, String)] = []
        for role in ["current", "previous"] {
            guard let text = try? host.run("cat \(Self.quoted(dir + "/" + role + ".cfg")) 2>/dev/null") else { continue }
            for (file, sha) in XenConfig.artifactComments(text) { out.append((role, file, sha)) }
        }
        if out.isEmpty { throw DeployError.notDeployed(domain: name) }
        return out
    }

    func consoleLog(_ profile: DeployProfile, _ name: String) -> String { profile.xen.consoleLogDirectory + "/guest-\(name).log" }

    func start(_ config: XenConfig, profile: DeployProfile) throws -> Result {
        try start(name: config.name, text: config.text, profile: profile)
    }

    /// `xl create` from `current.cfg`, then READY on the guest console (a fresh log, so an earlier boot's READY
    /// cannot count). One remote command waits for it, so a slow link costs one round trip, not one per second.
    func start(name: String, text: String, profile: DeployProfile) throws -> Result {
        let dir = domainDirectory(profile, name)
        let log = Self.quoted(consoleLog(profile, name))
        let started = Date()
        try host.run("rm -f \(log) && " + xl("create \(Self.quoted(dir + "/current.cfg"))"), timeout: 300)
        let seconds = Int(readyTimeout.rounded(.up))
        let wait = """
            i=0; while [ $i -lt \(seconds * 2) ]; do
              if grep -q 'KILN {"event":"ready"' \(log) 2>/dev/null; then echo READY; break; fi
              if grep -q 'KILN {"event":"failed"' \(log) 2>/dev/null; then echo FAILED; break; fi
              sleep 0.5; i=$((i+1)); done; tail -n 15 \(log) 2>/dev/null; true
            """
        let output = try host.run(wait, timeout: readyTimeout + 60)
        let verdict = output.split(separator: "\n", maxSplits: 1).first.map(String.init) ?? ""
        guard verdict == "READY" else {
            throw DeployError.timeout(domain: name, seconds: readyTimeout, console: consoleLog(profile, name),
                                      tail: output.split(separator: "\n").suffix(15).joined(separator: "\n"))
        }
        return Result(domain: name, artifacts: XenConfig.artifactComments(text), readyAfter: Date().timeIntervalSince(started), config: text)
    }

    /// Removes artifacts that neither config names.
    func removeUnreferenced(_ dir: String) throws {
        let q = Self.quoted(dir)
        try host.run("""
            cd \(q) && keep=$(cat current.cfg previous.cfg 2>/dev/null | sed -n 's/^# \\([^ ]*\\) sha256 \\([0-9a-f]\\{12\\}\\).*/\\2.\\1/p') && \
            for f in *.*; do case "$f" in *.cfg) continue;; esac; echo "$keep" | grep -qx "$f" || rm -f "$f"; done
            """)
    }
}

extension XenHost {
    @discardableResult
    func run(_ script: String, inputText: String, timeout: Double = 120) throws -> String {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-xen-\(getpid())-\(UUID().uuidString)").path
        try Data(inputText.utf8).write(to: URL(fileURLWithPath: file))
        defer { try? FileManager.default.removeItem(atPath: file) }
        return try run(script, input: file, timeout: timeout)
    }
}

extension XenConfig {
    /// `(file, sha256)` from a config's `# <file> sha256 <hash>` comments.
    static func artifactComments(_ text: String) -> [(file: String, sha256: String)] {
        text.split(separator: "\n").compactMap { line in
            let f = line.split(separator: " ")
            guard f.count == 4, f[0] == "#", f[2] == "sha256" else { return nil }
            return (String(f[1]), String(f[3]))
        }
    }
}

import Foundation
import Logging

/// Deploys images onto a libvirt host through `virsh -c <URI>`: uploads artifacts into a storage pool, defines
/// and starts the domain, and waits for READY on its serial console. Works the same for `qemu:///system` and
/// `qemu+ssh://host/system`: the artifacts travel as volume uploads and the console log is read back as a
/// volume of the same pool, so nothing assumes the hypervisor is this machine.
///
/// Volumes are content-addressed (`<domain>.<sha12>.<file>`); an upgrade keeps the replaced image's volumes and
/// records them as `previous` in the domain's `<metadata>`, which `rollback` swaps back.
public struct LibvirtDeployer {
    public var uri: String
    public var logger: Logger
    /// Seconds to wait for READY after start.
    public var readyTimeout: Double

    public init(uri: String, logger: Logger, readyTimeout: Double = 120) {
        self.uri = uri; self.logger = logger; self.readyTimeout = readyTimeout
    }

    /// What a deploy, upgrade or rollback left running.
    public struct Result: Sendable {
        public var domain: String
        public var artifacts: [LibvirtDomain.Artifact]
        /// Seconds from `virsh start` to READY on the console.
        public var readyAfter: Double?
        public var xml: String
    }

    @discardableResult
    func virsh(_ args: [String], timeout: Double = 120) throws -> String {
        logger.debug("virsh \(args.joined(separator: " "))")
        return try HostTool.check(["virsh", "-q", "-c", uri] + args, timeout: timeout)
    }

    static func volumeName(domain: String, file: String, sha256: String) -> String {
        "\(domain).\(sha256.prefix(12)).\(file)"
    }

    static func consoleVolume(domain: String) -> String { "\(domain).console.log" }

    /// The directory behind a directory storage pool, from its XML.
    func poolPath(_ pool: String) throws -> String {
        let xml = try virsh(["pool-dumpxml", pool])
        guard let target = xml.range(of: "<target>"), let open = xml.range(of: "<path>", range: target.upperBound..<xml.endIndex),
              let close = xml.range(of: "</path>", range: open.upperBound..<xml.endIndex)
        else { throw DeployError.command(argv: ["virsh", "pool-dumpxml", pool], status: 0, stderr: "no <target><path> in the pool: use a directory pool") }
        return String(xml[open.upperBound..<close.lowerBound])
    }

    /// Uploads one artifact unless the pool already holds it (the name carries the hash); returns its host path.
    func upload(_ local: String, volume: String, pool: String) throws -> String {
        if (try? virsh(["vol-info", "--pool", pool, volume])) == nil {
            let size = (try? FileManager.default.attributesOfItem(atPath: local)[.size] as? Int) ?? 0
            logger.info("uploading \(local) to \(pool)/\(volume) (\(size) bytes)")
            try virsh(["vol-create-as", pool, volume, String(max(size, 1)), "--format", "raw"])
            try virsh(["vol-upload", "--pool", pool, volume, local], timeout: 600)
        }
        return try virsh(["vol-path", "--pool", pool, volume]).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Uploads the verified artifacts and builds the domain definition, keeping `previous` in its metadata.
    public func prepare(image: DeployImage, profile: DeployProfile, hashes: [String: String],
                        previous: [LibvirtDomain.Artifact] = []) throws -> LibvirtDomain {
        let pool = profile.libvirt.pool
        let consoleDir = profile.libvirt.console == "pty" ? "" : try poolPath(pool)
        return try Self.plan(image: image, profile: profile, hashes: hashes, previous: previous, consoleDirectory: consoleDir) {
            try upload($0, volume: $1, pool: pool)
        }
    }

    /// The domain `prepare` would define, without touching a host: volumes shown under `poolPath`.
    public static func dryRun(image: DeployImage, profile: DeployProfile, hashes: [String: String],
                              poolPath: String) throws -> LibvirtDomain {
        try plan(image: image, profile: profile, hashes: hashes, previous: [], consoleDirectory: poolPath) { poolPath + "/" + $1 }
    }

    static func plan(image: DeployImage, profile: DeployProfile, hashes: [String: String], previous: [LibvirtDomain.Artifact],
                     consoleDirectory: String, volumePath: (String, String) throws -> String) throws -> LibvirtDomain {
        let domain = profile.name ?? image.info.name
        var artifacts: [LibvirtDomain.Artifact] = []
        var paths: [String: String] = [:]
        for file in try image.files(for: profile.boot) {
            let sha = hashes[file] ?? ""
            let volume = volumeName(domain: domain, file: file, sha256: sha)
            paths[file] = try volumePath(image.path(file), volume)
            artifacts.append(.init(role: "current", file: file, sha256: sha, volume: volume))
        }
        let boot: LibvirtDomain.Boot
        switch profile.boot {
        case .direct:
            boot = .direct(kernel: paths["vmlinuz"] ?? "", initrd: paths["initramfs.cpio.zst"] ?? "", cmdline: image.info.cmdline)
        case .uefi:
            let file = artifacts.first?.file ?? ""
            boot = .uefi(disk: paths[file] ?? "", format: file.hasSuffix(".qcow2") ? "qcow2" : "raw")
        }
        let console: LibvirtDomain.Console = profile.libvirt.console == "pty"
            ? .pty : .file(consoleDirectory + "/" + consoleVolume(domain: domain))
        return try LibvirtDomain.plan(image: image, profile: profile, boot: boot, console: console,
                                      artifacts: artifacts + previous.map { .init(role: "previous", file: $0.file, sha256: $0.sha256, volume: $0.volume) })
    }

    /// Defines and starts a new domain, then waits for READY. A deploy that fails at any step leaves the host as
    /// it was: the domain is destroyed and undefined and the volumes uploaded for it deleted, so the next deploy
    /// (after fixing, say, a missing bridge) does not find it "already exists".
    public func deploy(image: DeployImage, profile: DeployProfile, hashes: [String: String]) throws -> Result {
        let name = profile.name ?? image.info.name
        if (try? virsh(["dominfo", name])) != nil {
            throw DeployError.command(argv: ["virsh", "define"], status: 1,
                                      stderr: "domain '\(name)' already exists: use `kiln deploy upgrade`, or undefine it first")
        }
        do {
            return try defineAndStart(try prepare(image: image, profile: profile, hashes: hashes), pool: profile.libvirt.pool)
        } catch {
            let pool = profile.libvirt.pool
            _ = try? virsh(["destroy", name])
            _ = try? virsh(["undefine", name, "--nvram"])
            for file in (try? image.files(for: profile.boot)) ?? [] {
                _ = try? virsh(["vol-delete", "--pool", pool, Self.volumeName(domain: name, file: file, sha256: hashes[file] ?? "")])
            }
            _ = try? virsh(["pool-refresh", pool])
            _ = try? virsh(["vol-delete", "--pool", pool, Self.consoleVolume(domain: name)])
            logger.error("deploy of \(name) failed; removed what it defined and uploaded")
            throw error
        }
    }

    /// Replaces a running domain's image, keeping the replaced one's volumes for `rollback`.
    public func upgrade(image: DeployImage, profile: DeployProfile, hashes: [String: String]) throws -> Result {
        let name = profile.name ?? image.info.name
        guard let oldXML = try? virsh(["dumpxml", "--inactive", name]) else { throw DeployError.notDeployed(domain: name) }
        let old = Self.parseArtifacts(oldXML)
        let current = old.filter { $0.role == "current" }
        var domain = try prepare(image: image, profile: profile, hashes: hashes, previous: current)
        domain.uuid = Self.element("uuid", in: oldXML)
        _ = try? virsh(["destroy", name])
        let result = try defineAndStart(domain, pool: profile.libvirt.pool)
        let keep = Set(domain.artifacts.map(\.volume))
        for stale in old where !keep.contains(stale.volume) { _ = try? virsh(["vol-delete", "--pool", profile.libvirt.pool, stale.volume]) }
        return result
    }

    /// Boots the image an upgrade replaced: swaps `current` and `previous` volumes in the domain definition.
    public func rollback(domain name: String, pool: String) throws -> Result {
        var xml = try virsh(["dumpxml", "--inactive", name])
        let artifacts = Self.parseArtifacts(xml)
        let previous = artifacts.filter { $0.role == "previous" }
        guard !previous.isEmpty else { throw DeployError.noPrevious(domain: name) }
        for p in previous {
            guard let c = artifacts.first(where: { $0.role == "current" && $0.file == p.file }) else { continue }
            let from = try virsh(["vol-path", "--pool", pool, c.volume]).trimmingCharacters(in: .whitespacesAndNewlines)
            let to = try virsh(["vol-path", "--pool", pool, p.volume]).trimmingCharacters(in: .whitespacesAndNewlines)
            xml = xml.replacingOccurrences(of: ">" + from + "<", with: ">" + to + "<")
                .replacingOccurrences(of: "'" + from + "'", with: "'" + to + "'")
                .replacingOccurrences(of: "\"" + from + "\"", with: "\"" + to + "\"")
        }
        xml = Self.swapRoles(xml)
        _ = try? virsh(["destroy", name])
        try define(xml)
        return try start(name, pool: pool, xml: xml)
    }

    /// Powers the domain off (the appliance keeps no state worth a clean shutdown).
    public func stop(domain: String) throws {
        let state = (try? virsh(["domstate", domain]))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        if state == "running" || state == "paused" { try virsh(["destroy", domain]) }
    }

    /// Stops and undefines the domain and deletes every volume Kiln uploaded for it, and its console log.
    public func undefine(domain: String, pool: String) throws {
        let xml = try? virsh(["dumpxml", "--inactive", domain])
        guard let xml else { throw DeployError.notDeployed(domain: domain) }
        try stop(domain: domain)
        try virsh(["undefine", domain, "--nvram"])
        for a in Self.parseArtifacts(xml) { _ = try? virsh(["vol-delete", "--pool", pool, a.volume]) }
        _ = try? virsh(["pool-refresh", pool])
        _ = try? virsh(["vol-delete", "--pool", pool, Self.consoleVolume(domain: domain)])
    }

    /// The artifacts recorded in a deployed domain's metadata.
    public func installedArtifacts(_ domain: String) throws -> [LibvirtDomain.Artifact] {
        guard let xml = try? virsh(["dumpxml", "--inactive", domain]) else { throw DeployError.notDeployed(domain: domain) }
        return Self.parseArtifacts(xml)
    }

    func define(_ xml: String) throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-domain-\(getpid())-\(UUID().uuidString).xml")
        try Data(xml.utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        try virsh(["define", file.path])
    }

    func defineAndStart(_ domain: LibvirtDomain, pool: String) throws -> Result {
        try define(domain.xml)
        return try start(domain.name, pool: pool, xml: domain.xml)
    }

    func start(_ name: String, pool: String, xml: String) throws -> Result {
        // A fresh console log, so READY from an earlier boot cannot satisfy this one.
        _ = try? virsh(["pool-refresh", pool])
        _ = try? virsh(["vol-delete", "--pool", pool, Self.consoleVolume(domain: name)])
        let started = Date()
        try virsh(["start", name])
        let artifacts = Self.parseArtifacts(xml)
        guard xml.contains("<serial type='file'>") || xml.contains("<serial type=\"file\">") else {
            return Result(domain: name, artifacts: artifacts, readyAfter: nil, xml: xml)
        }
        let seconds = try waitReady(name, pool: pool, since: started)
        return Result(domain: name, artifacts: artifacts, readyAfter: seconds, xml: xml)
    }

    /// Polls the console log (downloaded from the pool, so remote hosts work) for `KILN {"event":"ready"`.
    public func waitReady(_ domain: String, pool: String, since: Date = Date()) throws -> Double {
        let local = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-console-\(getpid())-\(domain).log").path
        defer { try? FileManager.default.removeItem(atPath: local) }
        var text = ""
        while Date().timeIntervalSince(since) < readyTimeout {
            Thread.sleep(forTimeInterval: 1)
            _ = try? virsh(["pool-refresh", pool])
            guard (try? virsh(["vol-download", "--pool", pool, Self.consoleVolume(domain: domain), local])) != nil,
                  let data = FileManager.default.contents(atPath: local) else { continue }
            text = String(decoding: data, as: UTF8.self)
            if text.contains(#"KILN {"event":"ready""#) { return Date().timeIntervalSince(since) }
        }
        let tail = text.split(separator: "\n").suffix(15).joined(separator: "\n")
        throw DeployError.timeout(domain: domain, seconds: readyTimeout, console: "\(pool)/\(Self.consoleVolume(domain: domain))", tail: tail)
    }

    /// Reads `<kiln:artifact role= file= sha256= volume=/>` elements back, whatever quotes libvirt wrote.
    static func parseArtifacts(_ xml: String) -> [LibvirtDomain.Artifact] {
        xml.components(separatedBy: "<kiln:artifact ").dropFirst().compactMap { chunk in
            guard let end = chunk.range(of: "/>") else { return nil }
            let attrs = String(chunk[..<end.lowerBound])
            func value(_ key: String) -> String? {
                for q in ["'", "\""] {
                    if let r = attrs.range(of: key + "=" + q), let e = attrs.range(of: q, range: r.upperBound..<attrs.endIndex) {
                        return String(attrs[r.upperBound..<e.lowerBound])
                    }
                }
                return nil
            }
            guard let role = value("role"), let file = value("file"), let sha = value("sha256"), let vol = value("volume") else { return nil }
            return .init(role: role, file: file, sha256: sha, volume: vol)
        }
    }

    static func element(_ name: String, in xml: String) -> String? {
        guard let open = xml.range(of: "<\(name)>"), let close = xml.range(of: "</\(name)>", range: open.upperBound..<xml.endIndex) else { return nil }
        return String(xml[open.upperBound..<close.lowerBound])
    }

    static func swapRoles(_ xml: String) -> String {
        var out = xml
        for q in ["'", "\""] {
            out = out.replacingOccurrences(of: "role=\(q)current\(q)", with: "role=\(q)kiln-swap\(q)")
                .replacingOccurrences(of: "role=\(q)previous\(q)", with: "role=\(q)current\(q)")
                .replacingOccurrences(of: "role=\(q)kiln-swap\(q)", with: "role=\(q)previous\(q)")
        }
        return out
    }
}

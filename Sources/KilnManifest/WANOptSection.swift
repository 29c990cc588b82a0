import Foundation
import KilnConfig
import KilnWANOpt

/// The `wanopt:` role: one side of a WAN optimizer pair.
///
/// ```yaml
/// wanopt:
///   lan: [lan]                          # interfaces whose TCP connections are intercepted
///   peer: 192.0.2.2:7800                # this side connects the channel (or `listen:` to accept it)
///   key: { file: wanopt.key }           # pre-shared key: a file next to the manifest, or { env: VAR } at build time
///   optimize: [ { destinations: [10.2.0.0/24], ports: [80, 445, 8000-8099] } ]
///   bypass: [ { ports: [22] } ]
///   store: { path: /var/lib/kiln/wanopt, size-mib: 256 }
/// ```
public struct WANOptSection: Decodable, Sendable {
    public var name: String?
    public var lan: [String]
    public var peer: SocketAddress?
    public var listen: SocketAddress?
    public var key: KeySource
    public var optimize: [MatchSpec]?
    public var bypass: [MatchSpec]?
    public var preserveSource: Bool?
    public var interceptPort: UInt16?
    public var store: StoreSpec?
    public var chunkSize: Int?
    public var compressionLevel: Int?
    public var windowKiB: Int?

    enum CodingKeys: String, CodingKey {
        case name, lan, peer, listen, key, optimize, bypass, store
        case preserveSource = "preserve-source", interceptPort = "intercept-port", chunkSize = "chunk-size"
        case compressionLevel = "compression-level", windowKiB = "window-kib"
    }

    /// Where the build reads the pre-shared key; it goes into the image as a root-only file, never into the
    /// compiled config, the lock file or a log.
    public struct KeySource: Decodable, Sendable {
        public var file: String?
        public var env: String?
    }

    public struct MatchSpec: Decodable, Sendable {
        public var destinations: [CIDR]?
        public var ports: [PortRange]?
    }

    public struct StoreSpec: Decodable, Sendable {
        public var path: String?
        public var sizeMiB: Int?
        enum CodingKeys: String, CodingKey { case path, sizeMiB = "size-mib" }
    }
}

/// Where the key lands in the image.
public enum WANOptKey {
    public static let path = "/etc/kiln/wanopt.key"
}

extension ManifestLoader {
    /// Validates the section against the appliance's interfaces and compiles the service config, the key file
    /// and the kernel modules interception needs.
    static func compileWANOpt(
        _ section: WANOptSection, applianceName: String, interfaceNames: Set<String>, manifestDirectory: String,
        environment: [String: String] = ProcessInfo.processInfo.environment,
        fail: (_ keys: [String], _ message: String) -> Void, warn: (_ keys: [String], _ message: String) -> Void = { _, _ in }
    ) -> (config: WANOptConfig, key: ImageFile)? {
        let keys = ["wanopt"]
        var ok = true
        func bad(_ k: [String], _ m: String) { fail(keys + k, m); ok = false }
        if section.lan.isEmpty { bad(["lan"], "list at least one interface whose connections are intercepted") }
        var lan: [InterfaceName] = []
        for (i, name) in section.lan.enumerated() {
            guard interfaceNames.contains(name), let n = try? InterfaceName(name) else {
                bad(["lan", "\(i)"], "'\(name)' is not an interface of this appliance" + hint(name, Array(interfaceNames))); continue
            }
            lan.append(n)
        }
        if section.peer == nil && section.listen == nil {
            bad([], "give 'peer' (this side connects the channel) or 'listen' (this side accepts it), or both")
        }
        var key: [UInt8] = []
        switch (section.key.file, section.key.env) {
        case let (file?, nil):
            let full = file.hasPrefix("/") ? file : manifestDirectory.isEmpty ? file : manifestDirectory + "/" + file
            if let data = FileManager.default.contents(atPath: full) { key = Array(data) } else { bad(["key", "file"], "cannot read the key file '\(full)'") }
            if let warning = KeyFiles.exposure(full) { warn(keys + ["key", "file"], warning) }
        case let (nil, env?):
            if let value = environment[env] { key = Array(value.utf8) } else {
                bad(["key", "env"], "environment variable \(env) is not set (it holds the pre-shared key at build time)")
            }
        default:
            bad(["key"], "give exactly one of 'file' (a path next to the manifest) or 'env' (a variable read at build time)")
        }
        let trimmed = key.drop { $0 == 0x20 || $0 == 0x0a || $0 == 0x0d || $0 == 0x09 }.reversed().drop { $0 == 0x20 || $0 == 0x0a || $0 == 0x0d || $0 == 0x09 }
        if ok, trimmed.count < 16 { bad(["key"], "the pre-shared key has \(trimmed.count) bytes; use at least 16 (e.g. `openssl rand -hex 32`)") }
        func matches(_ specs: [WANOptSection.MatchSpec]?, _ name: String) -> [WANOptMatch] {
            (specs ?? []).enumerated().map { i, m in
                if (m.destinations ?? []).isEmpty && (m.ports ?? []).isEmpty { bad([name, "\(i)"], "give 'destinations', 'ports' or both") }
                for (j, d) in (m.destinations ?? []).enumerated() where !d.isNetwork {
                    bad([name, "\(i)", "destinations", "\(j)"], "'\(d)' has host bits set; did you mean \(d.network)/\(d.prefixLength)?")
                }
                return WANOptMatch(destinations: m.destinations ?? [], ports: m.ports ?? [])
            }
        }
        let optimize = matches(section.optimize, "optimize"), bypass = matches(section.bypass, "bypass")
        let chunk = section.chunkSize ?? 8192
        if chunk < 1024 || chunk > 1 << 20 || chunk & (chunk - 1) != 0 { bad(["chunk-size"], "chunk size \(chunk) must be a power of two from 1024 to 1048576") }
        let level = section.compressionLevel ?? 3
        if !(1...19).contains(level) { bad(["compression-level"], "zstd level \(level) must be 1-19") }
        let window = section.windowKiB ?? 256
        if !(16...65536).contains(window) { bad(["window-kib"], "window of \(window) KiB must be 16-65536") }
        let sizeMiB = section.store?.sizeMiB ?? 256
        if sizeMiB < 8 { bad(["store", "size-mib"], "a chunk store of \(sizeMiB) MiB is too small; give at least 8") }
        let storePath = section.store?.path ?? WANOptStore().path
        if !storePath.hasPrefix("/") { bad(["store", "path"], "store path '\(storePath)' must be absolute") }
        guard ok else { return nil }
        let config = WANOptConfig(
            name: section.name ?? applianceName, lan: lan, interceptPort: section.interceptPort ?? 7810, listen: section.listen,
            peer: section.peer, keyFile: WANOptKey.path, optimize: optimize, bypass: bypass,
            preserveSource: section.preserveSource ?? true, window: UInt32(window) << 10,
            store: WANOptStore(path: storePath, capacity: sizeMiB << 20), averageChunkSize: chunk, compressionLevel: level)
        return (config, ImageFile(path: WANOptKey.path, mode: 0o600, contents: Array(trimmed.reversed()) + [0x0a]))
    }
}

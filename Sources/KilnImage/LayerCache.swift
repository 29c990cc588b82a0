import Glibc

/// One separately compressed cpio segment of the initramfs ("modules", "libs", "binaries", "config"). The
/// kernel unpacks an initramfs made of concatenated segments, each a complete cpio archive in its own
/// compressed frame, in order; later segments may add to directories created by earlier ones.
public struct ImageLayer: Sendable, Equatable {
    public var name: String
    public var entries: [CpioEntry]

    public init(name: String, entries: [CpioEntry]) {
        self.name = name
        self.entries = entries
    }
}

/// A compressed layer as it sits in the cache.
public struct CachedLayer: Sendable, Equatable {
    public var name: String
    /// SHA-256 of the layer's canonical input listing: the cache key.
    public var key: String
    /// The `.cpio.zst` file in the cache.
    public var path: String
    /// SHA-256 and size of the compressed file.
    public var sha256: String
    public var size: Int
    /// True when the file was already in the cache and nothing was recompressed.
    public var reused: Bool
    /// The layer holds a file other users may not read in the image (a private key): the cached file is 0600,
    /// and so is every output it goes into.
    public var secret = false
}

extension ImageLayer {
    /// A regular file whose image mode denies reading to others is a secret; the host copies keep it so.
    public var holdsSecrets: Bool {
        entries.contains { entry in
            if case .regular = entry.kind { return entry.mode & 0o004 == 0 }
            return false
        }
    }
}

/// A directory of compressed layers keyed by the SHA-256 of their canonical input listing (paths, kinds,
/// modes, content hashes, link targets, device numbers, epoch, compression level). An unchanged layer is
/// found by its key and reused without being packed or compressed again.
///
/// Content hashes of host files are remembered by (path, device, inode, size, mtime, ctime), so a warm
/// rebuild over an unchanged staging tree only stats files; a changed or re-extracted file is hashed again.
public final class LayerCache {
    public let directory: String
    private var knownHashes: [String: String]
    /// What `content-hashes` holds on disk, and the fingerprints this process has used: only used ones are
    /// written back, so stale fingerprints of files that no longer exist do not pile up.
    private var savedHashes: [String: String] = [:]
    private var usedHashes: [String: String] = [:]
    private static let format = "kiln-layer-v1"

    /// Opens (creating) the cache directory and loads the remembered content hashes.
    public init(directory: String) throws {
        self.directory = directory
        try FileSystem.makeDirectories(directory, mode: 0o700)
        // Some layers hold secrets: the directory is not listable by other users whatever the umask was.
        try FileSystem.check("chmod", directory) { chmod(directory, 0o700) }
        knownHashes = [:]
        let index = directory + "/content-hashes"
        if FileSystem.lstat(index) != nil {
            for line in String(decoding: try FileSystem.readFile(index), as: UTF8.self).split(separator: "\n") {
                guard let tab = line.firstIndex(of: "\t") else { continue }
                knownHashes[String(line[line.index(after: tab)...])] = String(line[..<tab])
            }
        }
        savedHashes = knownHashes
    }

    /// The compressed layer for `layer`: from the cache when its key is present, else packed, compressed at
    /// `level` and stored (atomically) under its key.
    public func build(_ layer: ImageLayer, epoch: UInt32, level: Int32 = 19) throws -> CachedLayer {
        let key = try self.key(for: layer, epoch: epoch, level: level)
        let path = directory + "/" + key + ".cpio.zst"
        let secret = layer.holdsSecrets
        if FileSystem.lstat(path) != nil {
            // A cache written before secret layers were 0600 is tightened on first use.
            if secret { try FileSystem.check("chmod", path) { chmod(path, 0o600) } }
            let (sha256, size) = try Hashing.sha256(file: path)
            try saveHashes()
            return CachedLayer(name: layer.name, key: key, path: path, sha256: sha256, size: size, reused: true, secret: secret)
        }
        let archive = try CpioWriter(epoch: epoch).archive(layer.entries)
        let compressed = try ZstdCompressor(level: level).compress(archive)
        try AtomicOutput.write(compressed, to: path, mode: secret ? 0o600 : 0o644)
        try saveHashes()
        return CachedLayer(name: layer.name, key: key, path: path, sha256: Hashing.sha256(compressed),
                           size: compressed.count, reused: false, secret: secret)
    }

    /// The canonical listing of a layer: one record per entry (after parents are added and paths sorted),
    /// fields separated by NUL, records by newline.
    public func listing(for layer: ImageLayer, epoch: UInt32, level: Int32) throws -> String {
        var lines = ["\(Self.format)\0epoch=\(epoch)\0zstd=\(level)"]
        for (name, entry) in try CpioWriter.normalized(layer.entries) {
            let mode = String(entry.mode & 0o7777, radix: 8)
            switch entry.kind {
            case .directory: lines.append("D\0\(mode)\0\(name)")
            case .symlink(let target): lines.append("L\0\(target)\0\(name)")
            case .characterDevice(let major, let minor): lines.append("C\0\(mode)\0\(major):\(minor)\0\(name)")
            case .blockDevice(let major, let minor): lines.append("B\0\(mode)\0\(major):\(minor)\0\(name)")
            case .regular(.bytes(let bytes)): lines.append("F\0\(mode)\0\(bytes.count)\0\(Hashing.sha256(bytes))\0\(name)")
            case .regular(.file(let host)):
                let (hash, size) = try contentHash(host)
                lines.append("F\0\(mode)\0\(size)\0\(hash)\0\(name)")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The cache key of a layer.
    public func key(for layer: ImageLayer, epoch: UInt32, level: Int32) throws -> String {
        Hashing.sha256(try listing(for: layer, epoch: epoch, level: level))
    }

    /// Deletes cached layers whose keys are not in `keys`.
    public func prune(keeping keys: Set<String>) throws {
        for name in try FileSystem.listDirectory(directory) where name.hasSuffix(".cpio.zst") {
            if !keys.contains(String(name.dropLast(".cpio.zst".count))) {
                try FileSystem.check("unlink", directory + "/" + name) { unlink(directory + "/" + name) }
            }
        }
    }

    /// Writes the concatenation of `layers` (in order) to `path` atomically and returns its SHA-256 and size;
    /// 0600 when any layer holds a secret.
    @discardableResult
    public static func concatenate(_ layers: [CachedLayer], to path: String) throws -> (sha256: String, size: Int) {
        var bytes = [UInt8]()
        for layer in layers { bytes += try FileSystem.readFile(layer.path) }
        try AtomicOutput.write(bytes, to: path, mode: layers.contains(where: \.secret) ? 0o600 : 0o644)
        return (Hashing.sha256(bytes), bytes.count)
    }

    /// SHA-256 and size of a host file, from the remembered hashes when its stat fingerprint is unchanged.
    private func contentHash(_ path: String) throws -> (String, Int) {
        guard let st = FileSystem.stat(path) else {
            throw ImageError.system(operation: "stat", path: path, errno: errno)
        }
        let fingerprint = "\(st.st_dev) \(st.st_ino) \(st.st_size) \(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec) "
            + "\(st.st_ctim.tv_sec).\(st.st_ctim.tv_nsec) \(path)"
        if let known = knownHashes[fingerprint] {
            usedHashes[fingerprint] = known
            return (known, Int(st.st_size))
        }
        let (hash, size) = try Hashing.sha256(file: path)
        knownHashes[fingerprint] = hash
        usedHashes[fingerprint] = hash
        return (hash, size)
    }

    private func saveHashes() throws {
        guard usedHashes.contains(where: { savedHashes[$0.key] != $0.value }) else { return }
        let text = usedHashes.sorted { $0.key < $1.key }.map { "\($0.value)\t\($0.key)\n" }.joined()
        try AtomicOutput.write(Array(text.utf8), to: directory + "/content-hashes")
        savedHashes = usedHashes
    }
}

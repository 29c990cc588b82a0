import Glibc

/// A Debian binary package file (.deb): an `ar` archive holding `debian-binary`, `control.tar.*` and
/// `data.tar.*` (xz, zstd or gzip). Reads the payload with libarchive, streaming, without root.
public struct DebArchive: Sendable {
    /// The .deb file on the host.
    public let path: String

    /// One member of the package's data archive.
    public struct Entry: Sendable, Equatable {
        /// What the member is.
        public enum Kind: Sendable, Equatable {
            case directory
            case regular
            case symlink(target: String)
            /// A hard link to another member (a guest path).
            case hardlink(target: String)
            /// A device node, FIFO or socket: listed, never extracted.
            case special
        }
        /// The guest path, absolute (`/usr/lib/...`).
        public var path: String
        public var kind: Kind
        /// Permission bits (including setuid/setgid/sticky).
        public var mode: UInt32
        public var size: Int64
        public var mtime: Int
    }

    public init(path: String) {
        self.path = path
    }

    /// Lists the data archive's members (the package root `./` is left out).
    public func listData() throws -> [Entry] {
        var entries = [Entry]()
        try withMember(prefix: "data.tar") { reader in
            while let raw = try reader.nextEntry() {
                if let entry = try Self.entry(raw, archive: reader.name) { entries.append(entry) }
            }
        }
        return entries
    }

    /// Extracts the data archive into `root` (created if missing) and returns what was written. Directories,
    /// regular files, symlinks and hard links are written; device nodes, FIFOs and sockets are skipped. A member
    /// with an absolute path or a `..` component is rejected. Parent directories that are symlinks (a merged
    /// `/lib -> usr/lib`) are followed inside the root, never outside it. Directories get at least `u+rwx` so
    /// extraction works without root.
    @discardableResult
    public func extractData(into root: String) throws -> [Entry] {
        try FileSystem.makeDirectories(root)
        let staging = StagingRoot(root)
        var written = [Entry]()
        try withMember(prefix: "data.tar") { reader in
            while let raw = try reader.nextEntry() {
                guard let entry = try Self.entry(raw, archive: reader.name) else { continue }
                if try extract(entry, from: reader, into: staging) { written.append(entry) }
            }
        }
        return written
    }

    /// The fields of the package's `control` file.
    public func control() throws -> DebControl {
        var text: String?
        try withMember(prefix: "control.tar") { reader in
            while let raw = try reader.nextEntry() {
                if StagingRoot.components(raw.pathname) == ["control"] {
                    text = String(decoding: try reader.readAll(limit: 1 << 22), as: UTF8.self)
                    return
                }
            }
        }
        guard let text else { throw ImageError.badArchive(archive: path, reason: "control.tar has no control file") }
        return DebControl(parsing: text)
    }

    /// Opens the .deb, finds the first member whose name starts with `prefix`, and reads it as a tar.
    private func withMember(prefix: String, _ body: (ArchiveReader) throws -> Void) throws {
        let outer = try ArchiveReader(path: path, formats: .ar)
        var sawVersion = false
        while let member = try outer.nextEntry() {
            let name = member.pathname.hasSuffix("/") ? String(member.pathname.dropLast()) : member.pathname
            if name == "debian-binary" {
                let version = String(decoding: try outer.readAll(limit: 64), as: UTF8.self)
                guard version.hasPrefix("2.") else {
                    throw ImageError.badArchive(archive: path, reason: "unsupported .deb format version \(version)")
                }
                sawVersion = true
                continue
            }
            guard name.hasPrefix(prefix + ".") || name == prefix else { continue }
            guard sawVersion else { throw ImageError.badArchive(archive: path, reason: "debian-binary is not first") }
            let inner = try ArchiveReader(member: outer, memberName: name, formats: .tarAnyCompression)
            try body(inner)
            return
        }
        throw ImageError.badArchive(archive: path, reason: "no \(prefix).* member (not a .deb?)")
    }

    /// Converts a libarchive header to an entry, validating its path. Returns nil for the root itself.
    static func entry(_ raw: ArchiveReader.Entry, archive: String) throws -> Entry? {
        guard let components = safeComponents(raw.pathname) else {
            throw ImageError.unsafeMember(archive: archive, member: raw.pathname)
        }
        if components.isEmpty { return nil }
        let kind: Entry.Kind
        if let link = raw.hardlinkTarget, !link.isEmpty {
            guard let target = safeComponents(link), !target.isEmpty else {
                throw ImageError.unsafeMember(archive: archive, member: link)
            }
            kind = .hardlink(target: StagingRoot.guestPath(target))
        } else {
            switch raw.fileType & S_IFMT {
            case S_IFDIR: kind = .directory
            case S_IFREG: kind = .regular
            case S_IFLNK: kind = .symlink(target: raw.symlinkTarget ?? "")
            default: kind = .special
            }
        }
        return Entry(path: StagingRoot.guestPath(components), kind: kind, mode: UInt32(raw.permissions & 0o7777),
                     size: raw.size, mtime: raw.mtime)
    }

    /// The components of a member path, or nil when it is absolute or climbs with `..`.
    static func safeComponents(_ pathname: String) -> [String]? {
        if pathname.hasPrefix("/") { return nil }
        let components = StagingRoot.components(pathname)
        if components.contains("..") { return nil }
        return components
    }

    /// Writes one entry; returns false for skipped kinds.
    private func extract(_ entry: Entry, from reader: ArchiveReader, into staging: StagingRoot) throws -> Bool {
        if case .special = entry.kind { return false }
        let parentGuest = FileSystem.parentPath(entry.path)
        guard let parent = try staging.resolve(parentGuest, createDirectories: true) else {
            throw ImageError.missingPath(root: staging.path, path: parentGuest)
        }
        let host = staging.hostPath(parent.path + "/" + FileSystem.baseName(entry.path))
        let existing = FileSystem.lstat(host)
        switch entry.kind {
        case .directory:
            let mode = mode_t(entry.mode) | 0o700
            if let existing, FileSystem.isDirectory(existing) {
                try FileSystem.check("chmod", host) { chmod(host, mode) }
            } else {
                if existing != nil { try FileSystem.check("unlink", host) { unlink(host) } }
                try FileSystem.check("mkdir", host) { mkdir(host, mode) }
                try FileSystem.check("chmod", host) { chmod(host, mode) }
            }
        case .regular:
            try removeNonDirectory(existing, host, reader.name, entry.path)
            let fd = try FileSystem.check("open", host) { open(host, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600) }
            defer { close(fd) }
            try reader.forEachBlock { offset, block in
                var done = 0
                while done < block.count {
                    let count = try FileSystem.check("write", host) {
                        pwrite(fd, block.baseAddress! + done, block.count - done, off_t(offset + done))
                    }
                    done += count
                }
            }
            try FileSystem.check("ftruncate", host) { ftruncate(fd, off_t(entry.size)) }
            try FileSystem.check("fchmod", host) { fchmod(fd, mode_t(entry.mode)) }
            var times = [timespec(tv_sec: entry.mtime, tv_nsec: 0), timespec(tv_sec: entry.mtime, tv_nsec: 0)]
            try FileSystem.check("futimens", host) { futimens(fd, &times) }
        case .symlink(let target):
            try removeNonDirectory(existing, host, reader.name, entry.path)
            try FileSystem.check("symlink", host) { symlink(target, host) }
        case .hardlink(let target):
            try removeNonDirectory(existing, host, reader.name, entry.path)
            guard let resolved = try staging.resolve(target, followLast: false) else {
                throw ImageError.badArchive(archive: reader.name, reason: "hard link \(entry.path) -> \(target): target missing")
            }
            let targetHost = staging.hostPath(resolved.path)
            try FileSystem.check("link", host) { link(targetHost, host) }
        case .special:
            return false
        }
        return true
    }

    private func removeNonDirectory(_ existing: stat?, _ host: String, _ archive: String, _ member: String) throws {
        guard let existing else { return }
        if FileSystem.isDirectory(existing) {
            throw ImageError.badArchive(archive: archive, reason: "\(member) would replace a directory")
        }
        try FileSystem.check("unlink", host) { unlink(host) }
    }
}

/// The fields of a package's `control` file (the first paragraph; continuation lines joined with newlines).
public struct DebControl: Sendable, Equatable {
    /// Field name → value, names as written (`Package`, `Version`, ...).
    public var fields: [String: String]

    public var package: String? { fields["Package"] }
    public var version: String? { fields["Version"] }
    public var architecture: String? { fields["Architecture"] }

    public init(parsing text: String) {
        var fields = [String: String]()
        var lastKey: String?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.isEmpty { if !fields.isEmpty { break } else { continue } }
            if line.first == " " || line.first == "\t", let key = lastKey {
                fields[key, default: ""] += "\n" + line.dropFirst()
                continue
            }
            guard let colon = line.firstIndex(of: ":") else { continue }
            let key = String(line[..<colon])
            fields[key] = line[line.index(after: colon)...].trimmedBlanks()
            lastKey = key
        }
        self.fields = fields
    }
}

extension Substring {
    fileprivate func trimmedBlanks() -> String {
        var slice = self[...]
        while let first = slice.first, first == " " || first == "\t" { slice = slice.dropFirst() }
        while let last = slice.last, last == " " || last == "\t" || last == "\r" { slice = slice.dropLast() }
        return String(slice)
    }
}

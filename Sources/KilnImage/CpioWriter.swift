/// One file-system object to put in a newc cpio archive.
public struct CpioEntry: Sendable, Equatable {
    /// Where a regular file's bytes come from.
    public enum Content: Sendable, Equatable {
        case bytes([UInt8])
        /// A host file, read when the archive is written.
        case file(String)
    }

    /// What the entry is.
    public enum Kind: Sendable, Equatable {
        case directory
        case regular(Content)
        case symlink(target: String)
        case characterDevice(major: UInt32, minor: UInt32)
        case blockDevice(major: UInt32, minor: UInt32)
    }

    /// The guest path (`/etc/kiln/config.json`; a leading `/` is optional).
    public var path: String
    public var kind: Kind
    /// Permission bits (`0o755`); the file-type bits come from `kind`.
    public var mode: UInt32

    public init(path: String, kind: Kind, mode: UInt32) {
        self.path = path
        self.kind = kind
        self.mode = mode
    }

    public static func directory(_ path: String, mode: UInt32 = 0o755) -> CpioEntry {
        CpioEntry(path: path, kind: .directory, mode: mode)
    }

    public static func file(_ path: String, bytes: [UInt8], mode: UInt32 = 0o644) -> CpioEntry {
        CpioEntry(path: path, kind: .regular(.bytes(bytes)), mode: mode)
    }

    public static func symlink(_ path: String, target: String) -> CpioEntry {
        CpioEntry(path: path, kind: .symlink(target: target), mode: 0o777)
    }

    public static func characterDevice(_ path: String, major: UInt32, minor: UInt32, mode: UInt32 = 0o600) -> CpioEntry {
        CpioEntry(path: path, kind: .characterDevice(major: major, minor: minor), mode: mode)
    }

    /// Entries for guest paths already staged under `root` (an ELF closure, a module set), by lstat: directories,
    /// regular files (read later from the host), symlinks. Other file types are rejected.
    public static func staged(root: String, paths: [String]) throws -> [CpioEntry] {
        let staging = StagingRoot(root)
        return try paths.map { path in
            let host = staging.hostPath(path)
            guard let st = FileSystem.lstat(host) else { throw ImageError.missingPath(root: root, path: path) }
            let mode = UInt32(st.st_mode & 0o7777)
            if FileSystem.isDirectory(st) { return .directory(path, mode: mode) }
            if FileSystem.isSymlink(st) { return .symlink(path, target: try FileSystem.readLink(host)) }
            if FileSystem.isRegular(st) { return CpioEntry(path: path, kind: .regular(.file(host)), mode: mode) }
            throw ImageError.badCpioEntry(path: path, reason: "not a directory, regular file or symlink in \(root)")
        }
    }
}

/// Writes deterministic "newc" (SVR4, magic `070701`) cpio archives, the format the kernel unpacks as an
/// initramfs (Documentation/driver-api/early-userspace/buffer-format.rst). Entries are sorted bytewise by path;
/// missing parent directories are added (0755) before their children; uid and gid are 0; every mtime is the
/// given epoch; inode numbers count up from 1 in output order; nlink is 2 for directories and 1 otherwise (no
/// hard links, so the kernel never links two entries together). The same input gives the same bytes.
public struct CpioWriter: Sendable {
    /// SOURCE_DATE_EPOCH: the mtime of every entry.
    public var epoch: UInt32

    public init(epoch: UInt32) {
        self.epoch = epoch
    }

    /// The archive for `entries`, ending with the `TRAILER!!!` record, padded to 4 bytes.
    public func archive(_ entries: [CpioEntry]) throws -> [UInt8] {
        var output = [UInt8]()
        output.reserveCapacity(64 * 1024)
        var inode: UInt32 = 1
        for (name, entry) in try Self.normalized(entries) {
            try append(name: name, entry: entry, inode: inode, to: &output)
            inode += 1
        }
        appendHeader(name: "TRAILER!!!", inode: 0, mode: 0, nlink: 1, size: 0, major: 0, minor: 0, to: &output)
        return output
    }

    /// Entries keyed by archive name (no leading `/`), parents added, sorted, duplicates rejected.
    static func normalized(_ entries: [CpioEntry]) throws -> [(String, CpioEntry)] {
        var byName = [String: CpioEntry]()
        for entry in entries {
            let components = StagingRoot.components(entry.path)
            guard !components.isEmpty else { throw ImageError.badCpioEntry(path: entry.path, reason: "empty path") }
            guard !components.contains("..") else { throw ImageError.badCpioEntry(path: entry.path, reason: "contains '..'") }
            let name = components.joined(separator: "/")
            if let existing = byName[name], existing != entry {
                throw ImageError.badCpioEntry(path: entry.path, reason: "listed twice with different contents")
            }
            byName[name] = entry
        }
        for name in Array(byName.keys) {
            var components = name.split(separator: "/").dropLast()
            while !components.isEmpty {
                let parent = components.joined(separator: "/")
                if let existing = byName[parent] {
                    guard existing.kind == .directory else {
                        throw ImageError.badCpioEntry(path: "/" + name, reason: "parent /\(parent) is not a directory")
                    }
                    break
                }
                byName[parent] = .directory("/" + parent)
                components = components.dropLast()
            }
        }
        return byName.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }.map { ($0.key, $0.value) }
    }

    private func append(name: String, entry: CpioEntry, inode: UInt32, to output: inout [UInt8]) throws {
        let permissions = entry.mode & 0o7777
        switch entry.kind {
        case .directory:
            appendHeader(name: name, inode: inode, mode: 0o040000 | permissions, nlink: 2, size: 0, major: 0, minor: 0, to: &output)
        case .symlink(let target):
            let bytes = Array(target.utf8)
            guard !bytes.isEmpty else { throw ImageError.badCpioEntry(path: entry.path, reason: "empty symlink target") }
            appendHeader(name: name, inode: inode, mode: 0o120777, nlink: 1, size: UInt32(bytes.count), major: 0, minor: 0, to: &output)
            appendData(bytes, to: &output)
        case .characterDevice(let major, let minor):
            appendHeader(name: name, inode: inode, mode: 0o020000 | permissions, nlink: 1, size: 0, major: major, minor: minor, to: &output)
        case .blockDevice(let major, let minor):
            appendHeader(name: name, inode: inode, mode: 0o060000 | permissions, nlink: 1, size: 0, major: major, minor: minor, to: &output)
        case .regular(let content):
            let bytes: [UInt8]
            switch content {
            case .bytes(let data): bytes = data
            case .file(let path): bytes = try FileSystem.readFile(path)
            }
            guard bytes.count <= Int(UInt32.max) else { throw ImageError.badCpioEntry(path: entry.path, reason: "larger than 4 GiB") }
            appendHeader(name: name, inode: inode, mode: 0o100000 | permissions, nlink: 1, size: UInt32(bytes.count), major: 0, minor: 0, to: &output)
            appendData(bytes, to: &output)
        }
    }

    private func appendHeader(name: String, inode: UInt32, mode: UInt32, nlink: UInt32, size: UInt32,
                              major: UInt32, minor: UInt32, to output: inout [UInt8]) {
        let nameBytes = Array(name.utf8)
        output += Array("070701".utf8)
        // ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check
        for field in [inode, mode, 0, 0, nlink, epoch, size, 0, 0, major, minor, UInt32(nameBytes.count + 1), 0] {
            Self.appendHex(field, to: &output)
        }
        output += nameBytes
        output.append(0)
        Self.pad(&output)
    }

    private func appendData(_ bytes: [UInt8], to output: inout [UInt8]) {
        output += bytes
        Self.pad(&output)
    }

    private static func pad(_ output: inout [UInt8]) {
        while output.count % 4 != 0 { output.append(0) }
    }

    private static let hexDigits = Array("0123456789ABCDEF".utf8)

    private static func appendHex(_ value: UInt32, to output: inout [UInt8]) {
        for shift in stride(from: 28, through: 0, by: -4) {
            output.append(hexDigits[Int((value >> UInt32(shift)) & 0xf)])
        }
    }
}

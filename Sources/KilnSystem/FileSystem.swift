import Glibc

/// Whole-file reads and writes, directories and links: the file operations kiln-init needs, each wrapped once.
public enum FileSystem {
    /// Reads a whole file (at most `limit` bytes).
    public static func readFile(_ path: String, limit: Int = 64 << 20) throws(Errno) -> [UInt8] {
        let fd = try FileDescriptor.open(path, .readOnly)
        do {
            return try fd.readAll(limit: limit)
        } catch {
            throw Errno(error.code, operation: "read", subject: path)
        }
    }

    /// Reads a whole file as UTF-8 text (invalid sequences are repaired, not rejected).
    public static func readText(_ path: String, limit: Int = 64 << 20) throws(Errno) -> String {
        String(decoding: try readFile(path, limit: limit), as: UTF8.self)
    }

    /// Writes `bytes` to `path`. With `atomically`, writes a temporary file beside it, fsyncs, then renames
    /// over the target, so a reader sees the old or the new content and never half of either.
    public static func writeFile(
        _ path: String, _ bytes: some Collection<UInt8>, atomically: Bool = false, mode: mode_t = 0o644
    ) throws(Errno) {
        guard atomically else {
            let fd = try FileDescriptor.open(path, [.writeOnly, .create, .truncate], mode: mode)
            try annotate(path) { () throws(Errno) in try fd.writeAll(bytes) }
            try annotate(path) { () throws(Errno) in try fd.close() }
            return
        }
        let temporary = "\(path).tmp-\(getpid())-\(MonotonicClock.nanoseconds())"
        do {
            let fd = try FileDescriptor.open(temporary, [.writeOnly, .create, .exclusive], mode: mode)
            try annotate(temporary) { () throws(Errno) in try fd.writeAll(bytes) }
            try systemCall("fsync", temporary) { fsync(fd.rawValue) }
            try annotate(temporary) { () throws(Errno) in try fd.close() }
            try systemCall("rename", "\(temporary) to \(path)") { rename(temporary, path) }
        } catch {
            _ = unlink(temporary)
            throw error
        }
    }

    /// Writes a string's UTF-8 bytes (see `writeFile(_:_:atomically:mode:)`).
    public static func writeFile(_ path: String, _ text: String, atomically: Bool = false, mode: mode_t = 0o644)
        throws(Errno)
    {
        try writeFile(path, Array(text.utf8), atomically: atomically, mode: mode)
    }

    /// mkdir(2); with `parents`, creates missing ancestors and accepts an existing directory (`mkdir -p`).
    public static func makeDirectory(_ path: String, mode: mode_t = 0o755, parents: Bool = true) throws(Errno) {
        guard parents else {
            try systemCall("mkdir", path) { mkdir(path, mode) }
            return
        }
        var prefix = path.hasPrefix("/") ? "/" : ""
        for component in path.split(separator: "/", omittingEmptySubsequences: true) {
            prefix += prefix.isEmpty || prefix.hasSuffix("/") ? String(component) : "/" + component
            if mkdir(prefix, mode) == 0 { continue }
            let code = errno
            if code == EEXIST && isDirectory(prefix) { continue }
            throw Errno(code, operation: "mkdir", subject: prefix)
        }
    }

    /// symlink(2): creates `path` pointing at `target`. An existing identical link is accepted.
    public static func symlink(target: String, at path: String) throws(Errno) {
        if Glibc.symlink(target, path) == 0 { return }
        let code = errno
        if code == EEXIST, let existing = try? readLink(path), existing == target { return }
        throw Errno(code, operation: "symlink", subject: "\(path) -> \(target)")
    }

    /// readlink(2).
    public static func readLink(_ path: String) throws(Errno) -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = try systemCall("readlink", path) { readlink(path, &buffer, buffer.count - 1) }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// unlink(2), or rmdir(2) for a directory. A missing path is not an error.
    public static func remove(_ path: String) throws(Errno) {
        let result = isDirectory(path) ? rmdir(path) : unlink(path)
        if result == 0 || errno == ENOENT { return }
        throw Errno(errno, operation: "remove", subject: path)
    }

    /// True when `path` exists (following links).
    public static func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    /// True when `path` is a directory (following links).
    public static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// The names in a directory, without `.` and `..` (none when it cannot be read).
    public static func entries(_ path: String) -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    private static func annotate(_ path: String, _ body: () throws(Errno) -> Void) throws(Errno) {
        do { try body() } catch { throw Errno(error.code, operation: error.operation, subject: path) }
    }
}

import Glibc

/// Thin wrappers over the file system calls KilnImage uses. One place retries EINTR and turns `-1` into
/// `ImageError.system` naming the path.
enum FileSystem {
    /// Runs `body` until it does not fail with EINTR; a `-1` result becomes `ImageError.system`.
    @discardableResult
    static func check<T: BinaryInteger>(_ operation: String, _ path: String, _ body: () -> T) throws -> T {
        while true {
            let result = body()
            if result != -1 { return result }
            if errno == EINTR { continue }
            throw ImageError.system(operation: operation, path: path, errno: errno)
        }
    }

    static func lstat(_ path: String) -> Glibc.stat? {
        var st = Glibc.stat()
        return Glibc.lstat(path, &st) == 0 ? st : nil
    }

    static func stat(_ path: String) -> Glibc.stat? {
        var st = Glibc.stat()
        return fstatat(AT_FDCWD, path, &st, 0) == 0 ? st : nil
    }

    static func isDirectory(_ st: Glibc.stat) -> Bool { (st.st_mode & S_IFMT) == S_IFDIR }
    static func isRegular(_ st: Glibc.stat) -> Bool { (st.st_mode & S_IFMT) == S_IFREG }
    static func isSymlink(_ st: Glibc.stat) -> Bool { (st.st_mode & S_IFMT) == S_IFLNK }

    static func readLink(_ path: String) throws -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = try check("readlink", path) { Glibc.readlink(path, &buffer, buffer.count - 1) }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Creates `path` and its missing parents with `mode`.
    static func makeDirectories(_ path: String, mode: mode_t = 0o755) throws {
        if let st = lstat(path), isDirectory(st) { return }
        let parent = parentPath(path)
        if parent != path, !parent.isEmpty { try makeDirectories(parent, mode: mode) }
        if Glibc.mkdir(path, mode) != 0 && errno != EEXIST {
            throw ImageError.system(operation: "mkdir", path: path, errno: errno)
        }
    }

    static func parentPath(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        if slash == path.startIndex { return "/" }
        return String(path[..<slash])
    }

    static func baseName(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }

    /// Reads a whole file.
    static func readFile(_ path: String) throws -> [UInt8] {
        let fd = try check("open", path) { open(path, O_RDONLY | O_CLOEXEC) }
        defer { close(fd) }
        var st = Glibc.stat()
        try check("fstat", path) { fstat(fd, &st) }
        var result = [UInt8]()
        result.reserveCapacity(Int(st.st_size))
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let count = try check("read", path) { chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) } }
            if count == 0 { break }
            result.append(contentsOf: chunk[0..<count])
        }
        return result
    }

    /// Writes all of `bytes` to `fd`.
    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
        var offset = 0
        while offset < bytes.count {
            let written = try check("write", path) { write(fd, bytes.baseAddress! + offset, bytes.count - offset) }
            offset += written
        }
    }

    /// Creates (or truncates) `path`, writes `bytes`, fsyncs it when asked.
    static func writeFile(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644, sync: Bool) throws {
        let fd = try check("open", path) { open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode) }
        defer { close(fd) }
        try bytes.withUnsafeBytes { try writeAll(fd, $0, path: path) }
        if sync { try check("fsync", path) { fsync(fd) } }
    }

    static func fsyncPath(_ path: String, directory: Bool) throws {
        let flags = directory ? (O_RDONLY | O_DIRECTORY | O_CLOEXEC) : (O_RDONLY | O_CLOEXEC)
        let fd = try check("open", path) { open(path, flags) }
        defer { close(fd) }
        try check("fsync", path) { fsync(fd) }
    }

    /// Names in a directory, sorted bytewise, without `.` and `..`.
    static func listDirectory(_ path: String) throws -> [String] {
        guard let dir = opendir(path) else {
            throw ImageError.system(operation: "opendir", path: path, errno: errno)
        }
        defer { closedir(dir) }
        var names = [String]()
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }

    /// Removes `path` recursively; a missing path is not an error. Symlinks are removed, never followed.
    static func removeTree(_ path: String) throws {
        guard let st = lstat(path) else { return }
        if isDirectory(st) {
            for name in try listDirectory(path) { try removeTree(path + "/" + name) }
            try check("rmdir", path) { rmdir(path) }
        } else {
            try check("unlink", path) { unlink(path) }
        }
    }

    /// Every regular file under `path` (recursively, symlinks not followed), sorted.
    static func regularFiles(under path: String) throws -> [String] {
        var result = [String]()
        for name in try listDirectory(path) {
            let child = path + "/" + name
            guard let st = lstat(child) else { continue }
            if isDirectory(st) {
                result += try regularFiles(under: child)
            } else if isRegular(st) {
                result.append(child)
            }
        }
        return result
    }
}

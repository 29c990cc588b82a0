import Glibc

/// Writes outputs so a reader sees the old version or the new one, never a mix: files via a temporary file
/// in the same directory, fsync and rename; whole directories via a sibling temporary directory swapped in
/// with renameat2(RENAME_EXCHANGE). A failure before the swap leaves the previous output untouched.
public enum AtomicOutput {
    /// Writes `bytes` to `path` atomically (temp file, fsync, rename, fsync of the directory).
    public static func write(_ bytes: [UInt8], to path: String, mode: mode_t = 0o644) throws {
        let parent = FileSystem.parentPath(path)
        let temporary = parent + "/." + FileSystem.baseName(path) + ".tmp-\(getpid())"
        do {
            try FileSystem.writeFile(temporary, bytes, mode: mode, sync: true)
            try FileSystem.check("chmod", temporary) { chmod(temporary, mode) }
            try FileSystem.check("rename", path) { rename(temporary, path) }
        } catch {
            unlink(temporary)
            throw error
        }
        try FileSystem.fsyncPath(parent, directory: true)
    }

    /// Builds the directory at `path` atomically: `build` fills `<parent>/.<name>.tmp-<pid>`; every file in it is
    /// fsynced; it is exchanged with the existing `path` (or renamed into place when there is none); the old
    /// version is removed. When `build` throws, the temporary directory is removed and `path` is untouched.
    /// The directory gets `mode` whatever the umask (0700 for outputs that hold secrets).
    @discardableResult
    public static func replaceDirectory<T>(at path: String, mode: mode_t = 0o755, _ build: (String) throws -> T) throws -> T {
        let parent = FileSystem.parentPath(path)
        try FileSystem.makeDirectories(parent)
        let temporary = parent + "/." + FileSystem.baseName(path) + ".tmp-\(getpid())"
        try FileSystem.removeTree(temporary)
        try FileSystem.check("mkdir", temporary) { mkdir(temporary, mode & 0o700) }
        try FileSystem.check("chmod", temporary) { chmod(temporary, mode) }
        let result: T
        do {
            result = try build(temporary)
            try syncTree(temporary)
        } catch {
            try? FileSystem.removeTree(temporary)
            throw error
        }
        if FileSystem.lstat(path) == nil {
            try FileSystem.check("rename", path) { rename(temporary, path) }
        } else if try exchange(temporary, path) {
            try FileSystem.fsyncPath(parent, directory: true)
            try FileSystem.removeTree(temporary)  // now holds the previous output
        } else {
            // No RENAME_EXCHANGE on this file system: move the old one aside first (a short window without it).
            let old = parent + "/." + FileSystem.baseName(path) + ".old-\(getpid())"
            try FileSystem.removeTree(old)
            try FileSystem.check("rename", path) { rename(path, old) }
            try FileSystem.check("rename", path) { rename(temporary, path) }
            try FileSystem.removeTree(old)
        }
        try FileSystem.fsyncPath(parent, directory: true)
        return result
    }

    /// fsyncs every regular file and directory under `path`, children first.
    static func syncTree(_ path: String) throws {
        for name in try FileSystem.listDirectory(path) {
            let child = path + "/" + name
            guard let st = FileSystem.lstat(child) else { continue }
            if FileSystem.isDirectory(st) {
                try syncTree(child)
            } else if FileSystem.isRegular(st) {
                try FileSystem.fsyncPath(child, directory: false)
            }
        }
        try FileSystem.fsyncPath(path, directory: true)
    }

    private typealias RenameAt2 = @convention(c) (Int32, UnsafePointer<CChar>?, Int32, UnsafePointer<CChar>?, UInt32) -> Int32

    /// glibc ≥ 2.28 has renameat2(), but Swift's Glibc module does not export it: look it up once.
    private static let renameat2: RenameAt2? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "renameat2") else { return nil }
        return unsafeBitCast(symbol, to: RenameAt2.self)
    }()

    private static let renameExchange: UInt32 = 1 << 1

    /// Swaps two paths atomically; false when the kernel or file system cannot (ENOSYS, EINVAL).
    static func exchange(_ a: String, _ b: String) throws -> Bool {
        guard let renameat2 else { return false }
        while true {
            if renameat2(AT_FDCWD, a, AT_FDCWD, b, renameExchange) == 0 { return true }
            switch errno {
            case EINTR: continue
            case ENOSYS, EINVAL, ENOTSUP: return false
            default: throw ImageError.system(operation: "renameat2(RENAME_EXCHANGE)", path: b, errno: errno)
            }
        }
    }
}

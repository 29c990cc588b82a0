import Foundation
import Glibc

/// What an interrupted Kiln process leaves behind, and the rule for removing it: a temporary named after its
/// process (`….tmp-PID`, `….tmp-PID-N`, `….old-PID`) goes once that process has gone; a `.partial` download goes
/// once no process holds its lock (a download holds it from the first byte to the rename). The next build
/// sweeps the output root and the cache, so a `kill -9` or a power cut costs disk space only until then.
public enum Leftovers {
    /// The process a temporary name belongs to, or nil when `name` is not one.
    public static func owner(ofTemporaryName name: String) -> pid_t? {
        for marker in [".tmp-", ".old-"] {
            guard let range = name.range(of: marker, options: .backwards) else { continue }
            let rest = name[range.upperBound...].split(separator: "-", omittingEmptySubsequences: false)
            guard (1...2).contains(rest.count), rest.allSatisfy({ !$0.isEmpty && $0.allSatisfy { c in c.isASCII && c.isNumber } }),
                  let pid = pid_t(rest[0]), pid > 0 else { continue }
            return pid
        }
        return nil
    }

    /// True while a process with this id exists (one of another user counts: EPERM).
    public static func isAlive(_ pid: pid_t) -> Bool { kill(pid, 0) == 0 || errno == EPERM }

    /// Removes the leftovers directly in `directory` (temporaries of dead processes, unlocked `.partial` files)
    /// and returns their paths. A missing directory has none.
    @discardableResult
    public static func sweep(_ directory: String) -> [String] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
        var removed: [String] = []
        for name in names.sorted() {
            let path = directory + "/" + name
            if let pid = owner(ofTemporaryName: name) {
                guard pid != getpid(), !isAlive(pid) else { continue }
                if (try? FileManager.default.removeItem(atPath: path)) != nil { removed.append(path) }
            } else if name.hasSuffix(".partial") {
                let fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
                guard fd >= 0 else { continue }
                defer { close(fd) }
                // Unlinked while locked, so a download that opens it next sees a fresh file (see `lockPartial`).
                if flock(fd, LOCK_EX | LOCK_NB) == 0, unlink(path) == 0 { removed.append(path) }
            }
        }
        return removed
    }

    /// Opens and locks the `.partial` file at `path` for a download, creating it. Returns the descriptor holding
    /// the lock (close it after the rename); waits for another process downloading the same file. A partial
    /// removed by a sweep between the open and the lock is opened again, so the lock is always on the file the
    /// path names.
    public static func lockPartial(_ path: String) throws -> Int32 {
        while true {
            let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw PackageError.io(path: path, message: String(cString: strerror(errno))) }
            while flock(fd, LOCK_EX) != 0 && errno == EINTR {}
            var held = stat(), named = stat()
            if fstat(fd, &held) == 0, stat(path, &named) == 0, held.st_ino == named.st_ino, held.st_dev == named.st_dev { return fd }
            close(fd)
        }
    }
}

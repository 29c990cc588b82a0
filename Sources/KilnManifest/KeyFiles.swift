import Glibc

/// Key files on the build host, checked the way `wg` checks them: one that users other than its owner and group
/// can read is still used, with a warning.
enum KeyFiles {
    /// The warning for `path` when others may read it, or nil.
    static func exposure(_ path: String) -> String? {
        var st = stat()
        guard stat(path, &st) == 0, st.st_mode & 0o004 != 0 else { return nil }
        return "the key file '\(path)' is readable by every user of this host (mode \(String(st.st_mode & 0o777, radix: 8))); "
            + "chmod 600 it"
    }
}

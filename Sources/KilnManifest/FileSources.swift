import Foundation
import KilnConfig

/// The `files:` section's host side: where a `source:` may be read from and what mode its copy gets.
///
/// A manifest is input a user may have been handed, so by default a source must resolve (symlinks and `..`
/// followed) to a regular file inside the manifest's own directory tree; `/etc/shadow`, `../../etc/shadow` and a
/// symlink to it are refused at their line. `--allow-host-files` lifts that for the person running the build.
/// Without `mode:` the copy keeps the source's permission bits (never the wider 0644 a build would otherwise
/// give a 0640 file); set-id and sticky bits are kept only when `mode:` asks for them.
enum FileSources {
    struct Source {
        var contents: [UInt8]
        var mode: UInt32
    }

    /// The first control character (U+0000-U+001F, U+007F) in `text`, for an error message.
    static func controlCharacter(in text: String) -> Unicode.Scalar? {
        text.unicodeScalars.first { $0.value < 0x20 || $0.value == 0x7f }
    }

    static func describe(_ scalar: Unicode.Scalar) -> String {
        String(format: "U+%04X", scalar.value)
    }

    /// Reads `source` (relative to `manifestDirectory` unless absolute). Throws the message to report at the key.
    static func read(_ source: String, manifestDirectory: String, allowHostFiles: Bool) throws(ValueError) -> Source {
        let directory = manifestDirectory.isEmpty ? "." : manifestDirectory
        let full = source.hasPrefix("/") ? source : directory + "/" + source
        guard let resolved = realPath(full) else { throw ValueError("cannot read '\(full)': \(String(cString: strerror(errno)))") }
        if !allowHostFiles {
            guard let root = realPath(directory) else { throw ValueError("cannot resolve the manifest's directory '\(directory)'") }
            guard resolved == root || resolved.hasPrefix(root == "/" ? "/" : root + "/") else {
                throw ValueError("source '\(source)' resolves to '\(resolved)', outside the manifest's directory \(root); "
                    + "copy the file next to the manifest, or build with --allow-host-files to read files from anywhere on this host")
            }
        }
        let fd = open(resolved, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard fd >= 0 else { throw ValueError("cannot read '\(full)': \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { throw ValueError("source '\(full)' is not a regular file") }
        guard let data = try? FileHandle(fileDescriptor: fd, closeOnDealloc: false).readToEnd() else {
            throw ValueError("cannot read '\(full)'")
        }
        return Source(contents: Array(data ?? Data()), mode: UInt32(st.st_mode) & 0o777)
    }

    private static func realPath(_ path: String) -> String? {
        guard let p = realpath(path, nil) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }
}

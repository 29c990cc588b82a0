import Glibc

// KilnImage: the host-side image assembly building blocks. Each file holds one concern: .deb extraction,
// ELF and kernel-module closures, the deterministic cpio writer, zstd, cached layers, atomic outputs, SBOM.

/// An image-assembly failure. Each case names the place it happened (a file, an archive member, a module).
public enum ImageError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A system call failed on `path`.
    case system(operation: String, path: String, errno: Int32)
    /// libarchive reported an error while reading `archive`.
    case archive(archive: String, message: String)
    /// The archive is readable but its contents are not what was expected.
    case badArchive(archive: String, reason: String)
    /// An archive member would land outside the staging directory.
    case unsafeMember(archive: String, member: String)
    /// An ELF file is malformed (`offset` is where parsing stopped).
    case malformedELF(path: String, offset: Int, reason: String)
    /// A binary needs a library that is not in the staging root.
    case missingLibrary(binary: String, library: String, searched: [String])
    /// A path inside the staging root does not exist or escapes it.
    case missingPath(root: String, path: String)
    /// A kernel module is not among the kernel's modules (`modules.dep` or the scanned `.ko` files).
    case unknownModule(name: String, suggestion: String?)
    /// `modules.dep` has a malformed line.
    case malformedModulesDep(path: String, line: Int, reason: String)
    /// A cpio entry cannot be written (bad path, name too long, file too large).
    case badCpioEntry(path: String, reason: String)
    /// zstd reported an error.
    case zstd(operation: String, message: String)
    /// A PE/COFF file (the UEFI stub) is malformed or cannot take the sections a unified kernel image adds.
    case malformedPE(path: String, offset: Int, reason: String)
    /// An external tool (mtools, qemu-img, xorriso) failed; `message` is its stderr.
    case tool(name: String, message: String)

    public var description: String {
        switch self {
        case .system(let operation, let path, let errno):
            return "\(path): \(operation) failed: \(String(cString: strerror(errno))) (errno \(errno))"
        case .archive(let archive, let message):
            return "\(archive): \(message)"
        case .badArchive(let archive, let reason):
            return "\(archive): \(reason)"
        case .unsafeMember(let archive, let member):
            return "\(archive): member '\(member)' is absolute or escapes the staging directory"
        case .malformedELF(let path, let offset, let reason):
            return "\(path): malformed ELF at offset \(offset): \(reason)"
        case .missingLibrary(let binary, let library, let searched):
            return "\(binary): needs \(library), not found in the image (searched \(searched.joined(separator: ":")))"
        case .missingPath(let root, let path):
            return "\(path): not found inside \(root)"
        case .unknownModule(let name, let suggestion):
            let hint = suggestion.map { " (did you mean '\($0)'?)" } ?? ""
            return "kernel module '\(name)' is not among the kernel's modules\(hint)"
        case .malformedModulesDep(let path, let line, let reason):
            return "\(path):\(line): \(reason)"
        case .badCpioEntry(let path, let reason):
            return "cpio entry \(path): \(reason)"
        case .zstd(let operation, let message):
            return "zstd \(operation): \(message)"
        case .malformedPE(let path, let offset, let reason):
            return "\(path): PE image at offset \(offset): \(reason)"
        case .tool(let name, let message):
            return "\(name) failed: \(message)"
        }
    }
}

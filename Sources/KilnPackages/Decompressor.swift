import CArchive
import Foundation

/// The one owner of a libarchive read handle, used here in raw-format mode to undo an xz or gzip filter.
final class ArchiveReader {
    private let raw: OpaquePointer

    init(path: String) throws {
        guard let handle = archive_read_new() else {
            throw PackageError.decompression(path: path, message: "cannot allocate a libarchive reader")
        }
        raw = handle
        archive_read_support_filter_all(raw)
        archive_read_support_format_raw(raw)
        guard archive_read_open_filename(raw, path, 1 << 16) == ARCHIVE_OK else {
            throw PackageError.decompression(path: path, message: lastError)
        }
    }

    deinit {
        archive_read_free(raw)
    }

    var lastError: String {
        archive_error_string(raw).map { String(cString: $0) } ?? "unknown libarchive error"
    }

    /// The whole decompressed stream of the single raw entry.
    func readAll(path: String, sizeHint: Int) throws -> [UInt8] {
        var entry: OpaquePointer?
        guard archive_read_next_header(raw, &entry) == ARCHIVE_OK else {
            throw PackageError.decompression(path: path, message: lastError)
        }
        var output: [UInt8] = []
        output.reserveCapacity(sizeHint)
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let count = chunk.withUnsafeMutableBytes { archive_read_data(raw, $0.baseAddress, $0.count) }
            if count < 0 { throw PackageError.decompression(path: path, message: lastError) }
            if count == 0 { break }
            output.append(contentsOf: chunk[0..<count])
        }
        return output
    }
}

/// Decompresses an index file (xz, gzip, or uncompressed) into memory.
enum Decompressor {
    static func contents(of path: String) throws -> [UInt8] {
        let compressed = fileSize(path) ?? 0
        return try ArchiveReader(path: path).readAll(path: path, sizeHint: compressed * 6)
    }
}

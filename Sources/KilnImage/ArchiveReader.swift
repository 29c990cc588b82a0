import CArchive
import Glibc

/// Owns one libarchive read handle (`struct archive *`); `deinit` frees it.
///
/// A reader is opened on a file, on memory it owns, or on the current member of another reader (a tar inside
/// an ar, as in a .deb), in which case it streams that member's bytes without copying them first.
final class ArchiveReader {
    /// The file formats a reader accepts.
    enum Formats {
        /// Unix `ar` archives (the outer layer of a .deb).
        case ar
        /// tar, with any compression filter libarchive knows (xz, zstd, gzip, bzip2).
        case tarAnyCompression
        /// A single compressed stream, decompressed to one entry (a `.ko.xz`, a `.ko.zst`).
        case raw
    }

    /// One archive member's metadata, copied out of libarchive's entry (which is reused per header).
    struct Entry: Sendable {
        var pathname: String
        var fileType: mode_t
        var permissions: mode_t
        var size: Int64
        var symlinkTarget: String?
        var hardlinkTarget: String?
        var mtime: Int
        var deviceMajor: UInt32
        var deviceMinor: UInt32
    }

    let handle: OpaquePointer
    /// A name for errors: the archive file, or `outer/member`.
    let name: String
    private var ownedMemory: UnsafeMutableRawBufferPointer?
    private var parent: ArchiveReader?

    private init(name: String, formats: Formats) throws {
        guard let handle = archive_read_new() else {
            throw ImageError.archive(archive: name, message: "archive_read_new failed")
        }
        self.handle = handle
        self.name = name
        switch formats {
        case .ar:
            archive_read_support_format_ar(handle)
            archive_read_support_filter_none(handle)
        case .tarAnyCompression:
            archive_read_support_format_tar(handle)
            archive_read_support_filter_all(handle)
        case .raw:
            archive_read_support_format_raw(handle)
            archive_read_support_filter_all(handle)
        }
    }

    deinit {
        archive_read_free(handle)
        ownedMemory?.deallocate()
    }

    /// Opens the archive file at `path`.
    convenience init(path: String, formats: Formats) throws {
        try self.init(name: path, formats: formats)
        try check(archive_read_open_filename(handle, path, 1 << 16))
    }

    /// Opens an archive held in memory (the bytes are copied and owned by the reader).
    convenience init(bytes: [UInt8], name: String, formats: Formats) throws {
        try self.init(name: name, formats: formats)
        let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 16)
        bytes.withUnsafeBytes { memory.copyMemory(from: $0) }
        ownedMemory = memory
        try check(archive_read_open_memory(handle, memory.baseAddress, bytes.count))
    }

    /// Opens the current member of `outer` as an archive of its own, streaming its data blocks.
    convenience init(member outer: ArchiveReader, memberName: String, formats: Formats) throws {
        try self.init(name: "\(outer.name)/\(memberName)", formats: formats)
        parent = outer
        let client = Unmanaged.passUnretained(outer).toOpaque()
        let read: @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?, UnsafeMutablePointer<UnsafeRawPointer?>?)
            -> Int = { _, client, buffer in
                guard let client, let buffer else { return -1 }
                let outer = Unmanaged<ArchiveReader>.fromOpaque(client).takeUnretainedValue()
                var size = 0
                var offset: Int64 = 0
                var block: UnsafeRawPointer?
                let status = archive_read_data_block(outer.handle, &block, &size, &offset)
                if status == ARCHIVE_EOF { return 0 }
                if status != ARCHIVE_OK && status != ARCHIVE_WARN { return -1 }
                buffer.pointee = block
                return size
            }
        try check(archive_read_open(handle, client, nil, read, nil))
    }

    /// The next member's header, or nil at the end of the archive.
    func nextEntry() throws -> Entry? {
        var entry: OpaquePointer?
        let status = archive_read_next_header(handle, &entry)
        if status == ARCHIVE_EOF { return nil }
        try check(status)
        guard let entry else { throw ImageError.archive(archive: name, message: "missing entry header") }
        let path = archive_entry_pathname(entry).map { String(cString: $0) } ?? ""
        return Entry(
            pathname: path,
            fileType: archive_entry_filetype(entry),
            permissions: archive_entry_perm(entry),
            size: archive_entry_size(entry),
            symlinkTarget: archive_entry_symlink(entry).map { String(cString: $0) },
            hardlinkTarget: archive_entry_hardlink(entry).map { String(cString: $0) },
            mtime: Int(archive_entry_mtime(entry)),
            deviceMajor: UInt32(archive_entry_rdevmajor(entry)),
            deviceMinor: UInt32(archive_entry_rdevminor(entry))
        )
    }

    /// Reads the current member's data completely (for small members: control files, modules).
    func readAll(limit: Int = 1 << 30) throws -> [UInt8] {
        var result = [UInt8]()
        try forEachBlock { offset, block in
            let end = offset + block.count
            guard end <= limit else {
                throw ImageError.badArchive(archive: name, reason: "member larger than \(limit) bytes")
            }
            if result.count < offset { result.append(contentsOf: repeatElement(0, count: offset - result.count)) }
            if result.count == offset {
                result.append(contentsOf: block)
            } else {
                result.replaceSubrange(offset..<min(end, result.count), with: block)
            }
        }
        return result
    }

    /// Calls `body` with each data block of the current member and its offset (sparse files skip offsets).
    func forEachBlock(_ body: (Int, UnsafeRawBufferPointer) throws -> Void) throws {
        while true {
            var size = 0
            var offset: Int64 = 0
            var block: UnsafeRawPointer?
            let status = archive_read_data_block(handle, &block, &size, &offset)
            if status == ARCHIVE_EOF { return }
            try check(status)
            if size > 0, let block { try body(Int(offset), UnsafeRawBufferPointer(start: block, count: size)) }
        }
    }

    /// Throws on ARCHIVE_FATAL/FAILED/RETRY with libarchive's message; warnings pass.
    func check(_ status: Int32) throws {
        if status == ARCHIVE_OK || status == ARCHIVE_WARN { return }
        let message = archive_error_string(handle).map { String(cString: $0) } ?? "libarchive error \(status)"
        throw ImageError.archive(archive: name, message: message)
    }
}

import CZstd

/// Owns one zstd compression context (`ZSTD_CCtx *`); `deinit` frees it.
///
/// Output is one frame with the content size and a checksum, compressed single-threaded: the same bytes and
/// level always give the same frame, on any machine (the kernel's initramfs unpacker reads one frame per
/// segment).
public final class ZstdCompressor {
    private let context: OpaquePointer
    public let level: Int32

    public init(level: Int32 = 19) throws {
        guard let context = ZSTD_createCCtx() else { throw ImageError.zstd(operation: "create", message: "out of memory") }
        self.context = context
        self.level = level
    }

    deinit { ZSTD_freeCCtx(context) }

    /// Compresses `bytes` into a single frame.
    public func compress(_ bytes: [UInt8]) throws -> [UInt8] {
        ZSTD_CCtx_reset(context, ZSTD_reset_session_and_parameters)
        try check("set level", ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, level))
        try check("set workers", ZSTD_CCtx_setParameter(context, ZSTD_c_nbWorkers, 0))
        try check("set checksum", ZSTD_CCtx_setParameter(context, ZSTD_c_checksumFlag, 1))
        try check("set content size", ZSTD_CCtx_setParameter(context, ZSTD_c_contentSizeFlag, 1))
        try check("pledge size", ZSTD_CCtx_setPledgedSrcSize(context, UInt64(bytes.count)))
        let bound = ZSTD_compressBound(bytes.count)
        var output = [UInt8](repeating: 0, count: bound)
        let written = try output.withUnsafeMutableBytes { out in
            try bytes.withUnsafeBytes { input in
                try check("compress", ZSTD_compress2(context, out.baseAddress, out.count, input.baseAddress, input.count))
            }
        }
        output.removeSubrange(written...)
        return output
    }
}

/// Owns one zstd decompression context (`ZSTD_DCtx *`); `deinit` frees it.
public final class ZstdDecompressor {
    private let context: OpaquePointer

    public init() throws {
        guard let context = ZSTD_createDCtx() else { throw ImageError.zstd(operation: "create", message: "out of memory") }
        self.context = context
    }

    deinit { ZSTD_freeDCtx(context) }

    /// Decompresses every frame in `bytes` (concatenated frames decode to the concatenation of their contents).
    public func decompress(_ bytes: [UInt8], limit: Int = 1 << 32) throws -> [UInt8] {
        ZSTD_DCtx_reset(context, ZSTD_reset_session_and_parameters)
        var result = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: ZSTD_DStreamOutSize())
        var lastHint = 0
        try bytes.withUnsafeBytes { raw in
            var input = ZSTD_inBuffer(src: raw.baseAddress, size: raw.count, pos: 0)
            repeat {
                let produced = try chunk.withUnsafeMutableBytes { out -> Int in
                    var output = ZSTD_outBuffer(dst: out.baseAddress, size: out.count, pos: 0)
                    lastHint = try check("decompress", ZSTD_decompressStream(context, &output, &input))
                    return output.pos
                }
                result += chunk[0..<produced]
                guard result.count <= limit else { throw ImageError.zstd(operation: "decompress", message: "output exceeds \(limit) bytes") }
                if produced == 0 && input.pos == input.size { break }
            } while input.pos < input.size || lastHint != 0
        }
        guard lastHint == 0 else { throw ImageError.zstd(operation: "decompress", message: "truncated input") }
        return result
    }
}

/// One-shot helpers over the context types.
public enum Zstd {
    /// Compresses `bytes` into one frame at `level` (default 19).
    public static func compress(_ bytes: [UInt8], level: Int32 = 19) throws -> [UInt8] {
        try ZstdCompressor(level: level).compress(bytes)
    }

    /// Decompresses one or more concatenated frames.
    public static func decompress(_ bytes: [UInt8]) throws -> [UInt8] {
        try ZstdDecompressor().decompress(bytes)
    }
}

@discardableResult
private func check(_ operation: String, _ code: Int) throws -> Int {
    if ZSTD_isError(code) != 0 {
        throw ImageError.zstd(operation: operation, message: String(cString: ZSTD_getErrorName(code)))
    }
    return code
}

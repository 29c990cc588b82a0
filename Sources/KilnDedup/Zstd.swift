import CZstd

/// One zstd compression context (owner of the C handle), reused for every chunk of a flow.
final class ZstdCompressor {
    private let ctx: OpaquePointer

    init(level: Int32) {
        // ZSTD_createCCtx fails only when malloc does.
        ctx = ZSTD_createCCtx()!
        ZSTD_CCtx_setParameter(ctx, ZSTD_c_compressionLevel, level)
    }

    deinit { ZSTD_freeCCtx(ctx) }

    /// Appends the zstd frame of `input` to `output` and returns its size, or nil when it would not be smaller
    /// than `input` (the caller then sends the bytes raw). With `prefix`, the frame refers back into those bytes
    /// (a raw-content prefix, zstd's delta mode): the decompressor needs the same prefix.
    func compress(_ input: UnsafeRawBufferPointer, prefix: UnsafeRawBufferPointer? = nil, appendingTo output: inout [UInt8]) -> Int? {
        guard input.count >= 32 else { return nil }
        let start = output.count
        let bound = ZSTD_compressBound(input.count)
        output.append(contentsOf: repeatElement(0, count: bound))
        if let prefix {
            // The window must reach back over the prefix, or matches into it are lost (zstd.h, refPrefix note 2).
            var log: Int32 = 10
            while (1 << log) < prefix.count + input.count { log += 1 }
            ZSTD_CCtx_setParameter(ctx, ZSTD_c_windowLog, log)
            ZSTD_CCtx_refPrefix(ctx, prefix.baseAddress, prefix.count)
        } else {
            ZSTD_CCtx_setParameter(ctx, ZSTD_c_windowLog, 0)
        }
        let n = output.withUnsafeMutableBytes { out in
            ZSTD_compress2(ctx, out.baseAddress! + start, bound, input.baseAddress, input.count)
        }
        guard ZSTD_isError(n) == 0, n < input.count else {
            ZSTD_CCtx_reset(ctx, ZSTD_reset_session_only)
            output.removeSubrange(start...)
            return nil
        }
        output.removeSubrange((start + n)...)
        return n
    }
}

/// One zstd decompression context. Decompresses only single frames that declare exactly the expected size.
final class ZstdDecompressor {
    private let ctx: OpaquePointer

    init() { ctx = ZSTD_createDCtx()! }

    deinit { ZSTD_freeDCtx(ctx) }

    /// Appends the `expected` bytes `frame` holds to `output`; false for a frame that is malformed or of
    /// another size (nothing is appended then). `prefix` must be the one the frame was compressed against.
    func decompress(_ frame: UnsafeRawBufferPointer, expected: Int, prefix: UnsafeRawBufferPointer? = nil,
                    appendingTo output: inout [UInt8]) -> Bool {
        guard let base = frame.baseAddress, ZSTD_getFrameContentSize(base, frame.count) == UInt64(expected),
              ZSTD_findFrameCompressedSize(base, frame.count) == frame.count else { return false }
        let start = output.count
        output.append(contentsOf: repeatElement(0, count: expected))
        // The prefix is referenced for this one frame; the call below consumes it whatever the outcome.
        if let prefix { ZSTD_DCtx_refPrefix(ctx, prefix.baseAddress, prefix.count) }
        let n = output.withUnsafeMutableBytes { out in
            ZSTD_decompressDCtx(ctx, out.baseAddress! + start, expected, base, frame.count)
        }
        if prefix != nil { ZSTD_DCtx_reset(ctx, ZSTD_reset_session_and_parameters) }
        guard ZSTD_isError(n) == 0, n == expected else {
            output.removeSubrange(start...)
            return false
        }
        return true
    }
}

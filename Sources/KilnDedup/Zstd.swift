import CZstd

/// One zstd compression context (owner of the C handle), reused for every chunk of a flow.
final class ZstdCompressor {
    private let ctx: OpaquePointer
    let level: Int32

    init(level: Int32) {
        // ZSTD_createCCtx fails only when malloc does.
        ctx = ZSTD_createCCtx()!
        self.level = level
    }

    deinit { ZSTD_freeCCtx(ctx) }

    /// Appends the zstd frame of `input` to `output` and returns its size, or nil when it would not be smaller
    /// than `input` (the caller then sends the bytes raw).
    func compress(_ input: UnsafeRawBufferPointer, appendingTo output: inout [UInt8]) -> Int? {
        guard input.count >= 32 else { return nil }
        let start = output.count
        let bound = ZSTD_compressBound(input.count)
        output.append(contentsOf: repeatElement(0, count: bound))
        let n = output.withUnsafeMutableBytes { out in
            ZSTD_compressCCtx(ctx, out.baseAddress! + start, bound, input.baseAddress, input.count, level)
        }
        guard ZSTD_isError(n) == 0, n < input.count else {
            output.removeSubrange(start...)
            return nil
        }
        output.removeSubrange((start + n)...)
        return n
    }
}

/// One zstd decompression context. Decompresses only frames that declare exactly the expected size.
final class ZstdDecompressor {
    private let ctx: OpaquePointer

    init() { ctx = ZSTD_createDCtx()! }

    deinit { ZSTD_freeDCtx(ctx) }

    /// Appends the `expected` bytes `frame` holds to `output`; false for a frame that is malformed or of
    /// another size (nothing is appended then).
    func decompress(_ frame: UnsafeRawBufferPointer, expected: Int, appendingTo output: inout [UInt8]) -> Bool {
        guard let base = frame.baseAddress, ZSTD_getFrameContentSize(base, frame.count) == UInt64(expected),
              ZSTD_findFrameCompressedSize(base, frame.count) == frame.count else { return false }
        let start = output.count
        output.append(contentsOf: repeatElement(0, count: expected))
        let n = output.withUnsafeMutableBytes { out in
            ZSTD_decompressDCtx(ctx, out.baseAddress! + start, expected, base, frame.count)
        }
        guard ZSTD_isError(n) == 0, n == expected else {
            output.removeSubrange(start...)
            return false
        }
        return true
    }
}

import Glibc

/// libzstd, opened when the first codec needs it rather than linked: kiln-init carries KilnDedup for the WAN
/// optimizer, and linking would put libzstd (~290 KB compressed) into every appliance's image. Images with a
/// `wanopt:` section carry the library at `path` (the build adds it with its ELF closure).
public enum Zstd {
    /// Where Debian's libzstd1 puts the library, in the guest and on an amd64 build host.
    public static let path = "/usr/lib/x86_64-linux-gnu/libzstd.so.1"

    /// The library's entry points, or why it could not be opened.
    public static let library: Result<Library, LoadError> = Library.open()

    /// Fails with a message naming the library when it is missing; services call this at start so a broken
    /// image is reported once, clearly, instead of at the first chunk.
    public static func require() throws(LoadError) { _ = try library.get() }

    public struct LoadError: Error, CustomStringConvertible {
        public var description: String
    }

    // zstd.h's stable values for the parameters and reset directives used here.
    static let compressionLevel: Int32 = 100
    static let windowLog: Int32 = 101
    static let resetSessionOnly: Int32 = 1
    static let resetSessionAndParameters: Int32 = 3

    public struct Library: @unchecked Sendable {
        typealias Create = @convention(c) () -> OpaquePointer?
        typealias Free = @convention(c) (OpaquePointer?) -> Int
        typealias SetParameter = @convention(c) (OpaquePointer?, Int32, Int32) -> Int
        typealias Bound = @convention(c) (Int) -> Int
        typealias RefPrefix = @convention(c) (OpaquePointer?, UnsafeRawPointer?, Int) -> Int
        typealias Code = @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?, Int, UnsafeRawPointer?, Int) -> Int
        typealias IsError = @convention(c) (Int) -> UInt32
        typealias Reset = @convention(c) (OpaquePointer?, Int32) -> Int
        typealias ContentSize = @convention(c) (UnsafeRawPointer?, Int) -> UInt64
        typealias FrameSize = @convention(c) (UnsafeRawPointer?, Int) -> Int

        let createCCtx: Create, freeCCtx: Free, setParameter: SetParameter, compressBound: Bound
        let cctxRefPrefix: RefPrefix, compress2: Code, isError: IsError, cctxReset: Reset
        let createDCtx: Create, freeDCtx: Free, dctxRefPrefix: RefPrefix, decompressDCtx: Code, dctxReset: Reset
        let frameContentSize: ContentSize, frameCompressedSize: FrameSize

        static func open() -> Result<Library, LoadError> {
            guard let handle = dlopen(Zstd.path, RTLD_NOW) ?? dlopen("libzstd.so.1", RTLD_NOW) else {
                let reason = dlerror().map { String(cString: $0) } ?? "not found"
                return .failure(LoadError(description: "cannot open libzstd (\(Zstd.path)): \(reason)"))
            }
            var missing: [String] = []
            func symbol<T>(_ name: String, _: T.Type) -> T? {
                guard let pointer = dlsym(handle, name) else { missing.append(name); return nil }
                return unsafeBitCast(pointer, to: T.self)
            }
            let library = Library(
                createCCtx: symbol("ZSTD_createCCtx", Create.self), freeCCtx: symbol("ZSTD_freeCCtx", Free.self),
                setParameter: symbol("ZSTD_CCtx_setParameter", SetParameter.self), compressBound: symbol("ZSTD_compressBound", Bound.self),
                cctxRefPrefix: symbol("ZSTD_CCtx_refPrefix", RefPrefix.self), compress2: symbol("ZSTD_compress2", Code.self),
                isError: symbol("ZSTD_isError", IsError.self), cctxReset: symbol("ZSTD_CCtx_reset", Reset.self),
                createDCtx: symbol("ZSTD_createDCtx", Create.self), freeDCtx: symbol("ZSTD_freeDCtx", Free.self),
                dctxRefPrefix: symbol("ZSTD_DCtx_refPrefix", RefPrefix.self), decompressDCtx: symbol("ZSTD_decompressDCtx", Code.self),
                dctxReset: symbol("ZSTD_DCtx_reset", Reset.self), frameContentSize: symbol("ZSTD_getFrameContentSize", ContentSize.self),
                frameCompressedSize: symbol("ZSTD_findFrameCompressedSize", FrameSize.self))
            guard let library else {
                return .failure(LoadError(description: "libzstd (\(Zstd.path)) lacks \(missing.joined(separator: ", "))"))
            }
            return .success(library)
        }

        private init?(createCCtx: Create?, freeCCtx: Free?, setParameter: SetParameter?, compressBound: Bound?,
                      cctxRefPrefix: RefPrefix?, compress2: Code?, isError: IsError?, cctxReset: Reset?,
                      createDCtx: Create?, freeDCtx: Free?, dctxRefPrefix: RefPrefix?, decompressDCtx: Code?, dctxReset: Reset?,
                      frameContentSize: ContentSize?, frameCompressedSize: FrameSize?) {
            guard let createCCtx, let freeCCtx, let setParameter, let compressBound, let cctxRefPrefix, let compress2,
                  let isError, let cctxReset, let createDCtx, let freeDCtx, let dctxRefPrefix, let decompressDCtx,
                  let dctxReset, let frameContentSize, let frameCompressedSize else { return nil }
            self.createCCtx = createCCtx; self.freeCCtx = freeCCtx; self.setParameter = setParameter
            self.compressBound = compressBound; self.cctxRefPrefix = cctxRefPrefix; self.compress2 = compress2
            self.isError = isError; self.cctxReset = cctxReset; self.createDCtx = createDCtx; self.freeDCtx = freeDCtx
            self.dctxRefPrefix = dctxRefPrefix; self.decompressDCtx = decompressDCtx; self.dctxReset = dctxReset
            self.frameContentSize = frameContentSize; self.frameCompressedSize = frameCompressedSize
        }
    }

    /// The opened library; callers reach it only after `require()` succeeded (the service checks at start).
    static var z: Library {
        switch library {
        case let .success(l): return l
        case let .failure(e): fatalError("\(e)")
        }
    }
}

/// One zstd compression context (owner of the C handle), reused for every chunk of a flow.
final class ZstdCompressor {
    private let z = Zstd.z
    private let ctx: OpaquePointer

    init(level: Int32) {
        // ZSTD_createCCtx fails only when malloc does.
        ctx = z.createCCtx()!
        _ = z.setParameter(ctx, Zstd.compressionLevel, level)
    }

    deinit { _ = z.freeCCtx(ctx) }

    /// Appends the zstd frame of `input` to `output` and returns its size, or nil when it would not be smaller
    /// than `input` (the caller then sends the bytes raw). With `prefix`, the frame refers back into those bytes
    /// (a raw-content prefix, zstd's delta mode): the decompressor needs the same prefix.
    func compress(_ input: UnsafeRawBufferPointer, prefix: UnsafeRawBufferPointer? = nil, appendingTo output: inout [UInt8]) -> Int? {
        guard input.count >= 32 else { return nil }
        let start = output.count
        let bound = z.compressBound(input.count)
        output.append(contentsOf: repeatElement(0, count: bound))
        if let prefix {
            // The window must reach back over the prefix, or matches into it are lost (zstd.h, refPrefix note 2).
            var log: Int32 = 10
            while (1 << log) < prefix.count + input.count { log += 1 }
            _ = z.setParameter(ctx, Zstd.windowLog, log)
            _ = z.cctxRefPrefix(ctx, prefix.baseAddress, prefix.count)
        } else {
            _ = z.setParameter(ctx, Zstd.windowLog, 0)
        }
        let n = output.withUnsafeMutableBytes { out in
            z.compress2(ctx, out.baseAddress! + start, bound, input.baseAddress, input.count)
        }
        guard z.isError(n) == 0, n < input.count else {
            _ = z.cctxReset(ctx, Zstd.resetSessionOnly)
            output.removeSubrange(start...)
            return nil
        }
        output.removeSubrange((start + n)...)
        return n
    }
}

/// One zstd decompression context. Decompresses only single frames that declare exactly the expected size.
final class ZstdDecompressor {
    private let z = Zstd.z
    private let ctx: OpaquePointer

    init() { ctx = z.createDCtx()! }

    deinit { _ = z.freeDCtx(ctx) }

    /// Appends the `expected` bytes `frame` holds to `output`; false for a frame that is malformed or of
    /// another size (nothing is appended then). `prefix` must be the one the frame was compressed against.
    func decompress(_ frame: UnsafeRawBufferPointer, expected: Int, prefix: UnsafeRawBufferPointer? = nil,
                    appendingTo output: inout [UInt8]) -> Bool {
        guard let base = frame.baseAddress, z.frameContentSize(base, frame.count) == UInt64(expected),
              z.frameCompressedSize(base, frame.count) == frame.count else { return false }
        let start = output.count
        output.append(contentsOf: repeatElement(0, count: expected))
        // The prefix is referenced for this one frame; the call below consumes it whatever the outcome.
        if let prefix { _ = z.dctxRefPrefix(ctx, prefix.baseAddress, prefix.count) }
        let n = output.withUnsafeMutableBytes { out in
            z.decompressDCtx(ctx, out.baseAddress! + start, expected, base, frame.count)
        }
        if prefix != nil { _ = z.dctxReset(ctx, Zstd.resetSessionAndParameters) }
        guard z.isError(n) == 0, n == expected else {
            output.removeSubrange(start...)
            return false
        }
        return true
    }
}

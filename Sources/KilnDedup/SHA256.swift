import CKilnHash

/// SHA-256 from CKilnHash (SHA-NI when the CPU has it). Named apart from swift-crypto's `SHA256`, which host code
/// may import alongside.
public struct KilnSHA256 {
    /// Which block function runs.
    public enum Implementation: Int32, Sendable, CaseIterable {
        case portable = 1
        case shaNI = 2
        /// The one chosen when none is asked for.
        public static var best: Implementation { Implementation(rawValue: kiln_sha256_best_impl()) ?? .portable }
    }

    private var ctx = kiln_sha256_ctx()

    public init() { kiln_sha256_init(&ctx) }

    /// nil when this CPU lacks `implementation`.
    public init?(implementation: Implementation) {
        guard kiln_sha256_init_impl(&ctx, implementation.rawValue) == 0 else { return nil }
    }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress else { return }
        kiln_sha256_update(&ctx, base, bytes.count)
    }

    public mutating func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }

    mutating func withContext<R>(_ body: (UnsafeMutablePointer<kiln_sha256_ctx>) -> R) -> R { body(&ctx) }

    /// The digest as a ChunkID, and the hasher starts over.
    public mutating func finalizeAndReset() -> ChunkID {
        var digest: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        withUnsafeMutableBytes(of: &digest) { kiln_sha256_final(&ctx, $0.baseAddress!.assumingMemoryBound(to: UInt8.self)) }
        reset()
        return ChunkID(bytes: (UInt64(bigEndian: digest.0), UInt64(bigEndian: digest.1),
                               UInt64(bigEndian: digest.2), UInt64(bigEndian: digest.3)))
    }

    /// Starts over, as a new hasher of the same implementation.
    public mutating func reset() { _ = kiln_sha256_init_impl(&ctx, Int32(ctx.impl)) }

    /// The 32-byte digest; the hasher must not be updated afterwards.
    public mutating func finalize() -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: 32) { out, count in
            kiln_sha256_final(&ctx, out.baseAddress!)
            count = 32
        }
    }

    public static func digest(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: 32) { out, count in
            kiln_sha256(bytes.baseAddress, bytes.count, out.baseAddress!)
            count = 32
        }
    }

    public static func digest(_ bytes: [UInt8]) -> [UInt8] { bytes.withUnsafeBytes { digest($0) } }

    /// HMAC-SHA-256 (RFC 2104) of `data` under `key`.
    public static func hmac(key: UnsafeRawBufferPointer, data: UnsafeRawBufferPointer) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: 32) { out, count in
            kiln_hmac_sha256(key.baseAddress, key.count, data.baseAddress, data.count, out.baseAddress!)
            count = 32
        }
    }

    public static func hmac(key: [UInt8], data: [UInt8]) -> [UInt8] {
        key.withUnsafeBytes { k in data.withUnsafeBytes { d in hmac(key: k, data: d) } }
    }
}

extension ChunkID: CustomStringConvertible {
    /// The id of `bytes`: their SHA-256.
    public init(hashing bytes: UnsafeRawBufferPointer) {
        var digest: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        withUnsafeMutableBytes(of: &digest) { out in
            kiln_sha256(bytes.baseAddress, bytes.count, out.baseAddress!.assumingMemoryBound(to: UInt8.self))
        }
        self.init(bytes: (UInt64(bigEndian: digest.0), UInt64(bigEndian: digest.1),
                          UInt64(bigEndian: digest.2), UInt64(bigEndian: digest.3)))
    }

    public init(hashing bytes: [UInt8]) { self = bytes.withUnsafeBytes { ChunkID(hashing: $0) } }

    /// From a 32-byte SHA-256 digest as written on the wire (big-endian words).
    public init(digest: UnsafeRawBufferPointer) {
        precondition(digest.count >= 32, "a ChunkID takes 32 bytes")
        func word(_ i: Int) -> UInt64 { UInt64(bigEndian: digest.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)) }
        self.init(bytes: (word(0), word(1), word(2), word(3)))
    }

    /// The 32 digest bytes, in the order SHA-256 defines (as `sha256sum` prints them).
    public var digest: [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        write(to: &out, at: 0)
        return out
    }

    /// Stores the 32 digest bytes at `offset` of `buffer` (which must have room).
    public func write(to buffer: inout [UInt8], at offset: Int) {
        buffer.withUnsafeMutableBytes { write(to: UnsafeMutableRawPointer($0.baseAddress! + offset)) }
    }

    public func write(to pointer: UnsafeMutableRawPointer) {
        pointer.storeBytes(of: bytes.0.bigEndian, toByteOffset: 0, as: UInt64.self)
        pointer.storeBytes(of: bytes.1.bigEndian, toByteOffset: 8, as: UInt64.self)
        pointer.storeBytes(of: bytes.2.bigEndian, toByteOffset: 16, as: UInt64.self)
        pointer.storeBytes(of: bytes.3.bigEndian, toByteOffset: 24, as: UInt64.self)
    }

    public var description: String {
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        var s = [UInt8]()
        s.reserveCapacity(64)
        for b in digest { s.append(hex[Int(b >> 4)]); s.append(hex[Int(b & 15)]) }
        return String(decoding: s, as: UTF8.self)
    }
}

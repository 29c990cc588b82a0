import CCryptoBoringSSL

/// Curve25519 and ChaCha20-Poly1305 from BoringSSL's C API: no Foundation, no allocation per packet.
public enum X25519 {
    /// A fresh private key (clamped by the scalar multiplication itself) and its public key.
    public static func keypair() -> (privateKey: [UInt8], publicKey: [UInt8]) {
        var pub = [UInt8](repeating: 0, count: 32)
        var priv = [UInt8](repeating: 0, count: 32)
        CCryptoBoringSSL_X25519_keypair(&pub, &priv)
        return (priv, pub)
    }

    public static func publicKey(of privateKey: [UInt8]) -> [UInt8] {
        var pub = [UInt8](repeating: 0, count: 32)
        CCryptoBoringSSL_X25519_public_from_private(&pub, privateKey)
        return pub
    }

    /// The shared secret, or nil when the peer's point gives the all-zero output (a low-order point).
    public static func sharedSecret(_ privateKey: [UInt8], _ publicKey: [UInt8]) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: 32)
        guard CCryptoBoringSSL_X25519(&out, privateKey, publicKey) == 1 else { return nil }
        return out
    }
}

/// Random bytes from BoringSSL's generator (getrandom underneath).
public func randomBytes(_ count: Int) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: count)
    _ = CCryptoBoringSSL_RAND_bytes(&out, count)
    return out
}

/// A random 32-bit value (sender indices, jitter).
public func randomUInt32() -> UInt32 {
    var value: UInt32 = 0
    withUnsafeMutableBytes(of: &value) { _ = CCryptoBoringSSL_RAND_bytes($0.baseAddress!.assumingMemoryBound(to: UInt8.self), 4) }
    return value
}

/// Constant-time equality for MACs and keys.
public func constantTimeEqual(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
    guard a.count == b.count else { return false }
    var diff: UInt8 = 0
    for i in 0..<a.count { diff |= a[i] ^ b[i] }
    return diff == 0
}

public func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    a.withUnsafeBytes { x in b.withUnsafeBytes { y in constantTimeEqual(x, y) } }
}

/// One ChaCha20-Poly1305 key with its BoringSSL context, set up once and reused for every packet.
///
/// WireGuard's nonce is 32 zero bits followed by the 64-bit little-endian counter.
public final class AEADKey: @unchecked Sendable {
    private let context: UnsafeMutablePointer<EVP_AEAD_CTX>

    /// `xchacha` selects XChaCha20-Poly1305 (24-byte nonce), used only for cookie replies.
    public init?(key: [UInt8], xchacha: Bool = false) {
        guard key.count == 32 else { return nil }
        let aead = xchacha ? CCryptoBoringSSL_EVP_aead_xchacha20_poly1305() : CCryptoBoringSSL_EVP_aead_chacha20_poly1305()
        guard let ctx = CCryptoBoringSSL_EVP_AEAD_CTX_new(aead, key, 32, 16) else { return nil }
        context = ctx
    }

    deinit { CCryptoBoringSSL_EVP_AEAD_CTX_free(context) }

    /// Encrypts `length` bytes at `buffer` in place and appends the 16-byte tag; the buffer must hold
    /// `length + 16` bytes. Returns false only if BoringSSL refuses (it does not for valid sizes).
    @inline(__always)
    public func seal(counter: UInt64, buffer: UnsafeMutableRawPointer, length: Int, ad: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)) -> Bool {
        var nonce = (UInt32(0), UInt32(truncatingIfNeeded: counter).littleEndian, UInt32(truncatingIfNeeded: counter >> 32).littleEndian)
        return withUnsafeBytes(of: &nonce) { n in
            var outLength = 0
            let p = buffer.assumingMemoryBound(to: UInt8.self)
            return CCryptoBoringSSL_EVP_AEAD_CTX_seal(
                context, p, &outLength, length + 16, n.baseAddress!.assumingMemoryBound(to: UInt8.self), 12,
                p, length, ad.baseAddress?.assumingMemoryBound(to: UInt8.self), ad.count) == 1
        }
    }

    /// Decrypts `length` bytes (ciphertext and tag) at `buffer` in place; returns the plaintext length, or nil
    /// when authentication fails.
    @inline(__always)
    public func open(counter: UInt64, buffer: UnsafeMutableRawPointer, length: Int, ad: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)) -> Int? {
        guard length >= 16 else { return nil }
        var nonce = (UInt32(0), UInt32(truncatingIfNeeded: counter).littleEndian, UInt32(truncatingIfNeeded: counter >> 32).littleEndian)
        return withUnsafeBytes(of: &nonce) { n -> Int? in
            var outLength = 0
            let p = buffer.assumingMemoryBound(to: UInt8.self)
            let ok = CCryptoBoringSSL_EVP_AEAD_CTX_open(
                context, p, &outLength, length, n.baseAddress!.assumingMemoryBound(to: UInt8.self), 12,
                p, length, ad.baseAddress?.assumingMemoryBound(to: UInt8.self), ad.count)
            return ok == 1 ? outLength : nil
        }
    }

    /// Seals a small array (handshake fields) with counter 0 and additional data `ad`.
    public func seal(_ plaintext: [UInt8], ad: [UInt8], counter: UInt64 = 0) -> [UInt8] {
        var buffer = plaintext + [UInt8](repeating: 0, count: 16)
        let n = plaintext.count
        _ = buffer.withUnsafeMutableBytes { b in ad.withUnsafeBytes { a in seal(counter: counter, buffer: b.baseAddress!, length: n, ad: a) } }
        return buffer
    }

    /// Opens a small array (handshake fields); nil when authentication fails.
    public func open(_ ciphertext: [UInt8], ad: [UInt8], counter: UInt64 = 0) -> [UInt8]? {
        var buffer = ciphertext
        let n = ciphertext.count
        let result = buffer.withUnsafeMutableBytes { b in ad.withUnsafeBytes { a in open(counter: counter, buffer: b.baseAddress!, length: n, ad: a) } }
        guard let result else { return nil }
        return Array(buffer.prefix(result))
    }

    /// XChaCha20-Poly1305 with an explicit 24-byte nonce (cookie replies).
    public func sealX(_ plaintext: [UInt8], nonce: [UInt8], ad: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: plaintext.count + 16)
        var outLength = 0
        _ = CCryptoBoringSSL_EVP_AEAD_CTX_seal(context, &out, &outLength, out.count, nonce, 24, plaintext, plaintext.count, ad, ad.count)
        return out
    }

    public func openX(_ ciphertext: [UInt8], nonce: [UInt8], ad: [UInt8]) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: ciphertext.count)
        var outLength = 0
        guard CCryptoBoringSSL_EVP_AEAD_CTX_open(context, &out, &outLength, out.count, nonce, 24, ciphertext, ciphertext.count, ad, ad.count) == 1 else { return nil }
        return Array(out.prefix(outLength))
    }
}

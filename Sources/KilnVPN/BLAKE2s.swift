/// BLAKE2s (RFC 7693) with the keyed MAC, HMAC and HKDF constructions the WireGuard handshake uses.
///
/// Only the handshake and cookie paths hash, so this favours clarity over speed; it never touches the
/// transport data path.
public struct BLAKE2s {
    private static let iv: [UInt32] = [
        0x6A09_E667, 0xBB67_AE85, 0x3C6E_F372, 0xA54F_F53A, 0x510E_527F, 0x9B05_688C, 0x1F83_D9AB, 0x5BE0_CD19,
    ]
    private static let sigma: [[Int]] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
        [14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3],
        [11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4],
        [7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8],
        [9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13],
        [2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9],
        [12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11],
        [13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10],
        [6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5],
        [10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0],
    ]

    private var h: [UInt32]
    private var t: UInt64 = 0
    private var buffer = [UInt8](repeating: 0, count: 64)
    private var filled = 0
    private let outputLength: Int

    /// Starts a hash of `outputLength` bytes (1...32), keyed when `key` is not empty (at most 32 bytes).
    public init(outputLength: Int = 32, key: [UInt8] = []) {
        precondition((1...32).contains(outputLength) && key.count <= 32, "BLAKE2s parameters out of range")
        self.outputLength = outputLength
        h = BLAKE2s.iv
        h[0] ^= 0x0101_0000 ^ (UInt32(key.count) << 8) ^ UInt32(outputLength)
        if !key.isEmpty {
            var block = [UInt8](repeating: 0, count: 64)
            block.replaceSubrange(0..<key.count, with: key)
            update(block)
        }
    }

    public mutating func update(_ data: some Collection<UInt8>) {
        for byte in data {
            if filled == 64 {
                t &+= 64
                compress(last: false)
                filled = 0
            }
            buffer[filled] = byte
            filled += 1
        }
    }

    public mutating func finalize() -> [UInt8] {
        t &+= UInt64(filled)
        for i in filled..<64 { buffer[i] = 0 }
        compress(last: true)
        var out = [UInt8]()
        out.reserveCapacity(32)
        for word in h { for s in stride(from: 0, to: 32, by: 8) { out.append(UInt8(truncatingIfNeeded: word >> UInt32(s))) } }
        return Array(out.prefix(outputLength))
    }

    private mutating func compress(last: Bool) {
        var m = [UInt32](repeating: 0, count: 16)
        for i in 0..<16 {
            m[i] = UInt32(buffer[4 * i]) | UInt32(buffer[4 * i + 1]) << 8 | UInt32(buffer[4 * i + 2]) << 16
                | UInt32(buffer[4 * i + 3]) << 24
        }
        var v = h + BLAKE2s.iv
        v[12] ^= UInt32(truncatingIfNeeded: t)
        v[13] ^= UInt32(truncatingIfNeeded: t >> 32)
        if last { v[14] = ~v[14] }
        @inline(__always) func rotr(_ x: UInt32, _ n: UInt32) -> UInt32 { (x >> n) | (x << (32 - n)) }
        @inline(__always) func g(_ a: Int, _ b: Int, _ c: Int, _ d: Int, _ x: UInt32, _ y: UInt32) {
            v[a] = v[a] &+ v[b] &+ x; v[d] = rotr(v[d] ^ v[a], 16)
            v[c] = v[c] &+ v[d]; v[b] = rotr(v[b] ^ v[c], 12)
            v[a] = v[a] &+ v[b] &+ y; v[d] = rotr(v[d] ^ v[a], 8)
            v[c] = v[c] &+ v[d]; v[b] = rotr(v[b] ^ v[c], 7)
        }
        for round in 0..<10 {
            let s = BLAKE2s.sigma[round]
            g(0, 4, 8, 12, m[s[0]], m[s[1]]); g(1, 5, 9, 13, m[s[2]], m[s[3]])
            g(2, 6, 10, 14, m[s[4]], m[s[5]]); g(3, 7, 11, 15, m[s[6]], m[s[7]])
            g(0, 5, 10, 15, m[s[8]], m[s[9]]); g(1, 6, 11, 12, m[s[10]], m[s[11]])
            g(2, 7, 8, 13, m[s[12]], m[s[13]]); g(3, 4, 9, 14, m[s[14]], m[s[15]])
        }
        for i in 0..<8 { h[i] ^= v[i] ^ v[i + 8] }
    }

    /// BLAKE2s-256 of the concatenation of `parts`.
    public static func hash(_ parts: [UInt8]...) -> [UInt8] {
        var state = BLAKE2s()
        for part in parts { state.update(part) }
        return state.finalize()
    }

    /// Keyed BLAKE2s with a 16-byte output: WireGuard's MAC (mac1, mac2, cookie values).
    public static func mac(key: [UInt8], _ data: some Collection<UInt8>) -> [UInt8] {
        var state = BLAKE2s(outputLength: 16, key: key)
        state.update(data)
        return state.finalize()
    }

    /// HMAC (RFC 2104) over BLAKE2s-256, block size 64.
    public static func hmac(key: [UInt8], _ data: [UInt8]) -> [UInt8] {
        var k = key.count > 64 ? hash(key) : key
        k += [UInt8](repeating: 0, count: 64 - k.count)
        var inner = BLAKE2s()
        inner.update(k.map { $0 ^ 0x36 })
        inner.update(data)
        var outer = BLAKE2s()
        outer.update(k.map { $0 ^ 0x5C })
        outer.update(inner.finalize())
        return outer.finalize()
    }

    /// HKDF with HMAC-BLAKE2s as WireGuard's KDF_n: `count` (1...3) outputs of 32 bytes from chaining key `key`.
    public static func kdf(_ count: Int, key: [UInt8], input: [UInt8]) -> [[UInt8]] {
        let prk = hmac(key: key, input)
        var outputs: [[UInt8]] = []
        var previous: [UInt8] = []
        for i in 1...count {
            previous = hmac(key: prk, previous + [UInt8(i)])
            outputs.append(previous)
        }
        return outputs
    }
}

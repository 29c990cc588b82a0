import CKilnHash
import Glibc

/// Mutual challenge/response on the peer channel with a pre-shared key. Each side sends HELLO with a fresh
/// 32-byte challenge; each answers the other's with AUTH = HMAC-SHA256(key, label ‖ role ‖ their challenge ‖
/// own challenge). The role byte differs between the connecting and the accepting side, so a proof cannot be
/// reflected back to its sender; fresh challenges on both sides stop replays. Nothing flows before both proofs
/// check out, and the key is never logged or sent.
public enum ChannelAuth {
    public static let version: UInt8 = 1
    static let label = Array("kiln-wanopt channel v1".utf8)
    public static let connectorRole: UInt8 = 0x43  // "C"
    public static let acceptorRole: UInt8 = 0x41   // "A"

    /// The proof the side with `role` sends in answer to `theirs`, having sent `ours`.
    public static func proof(key: [UInt8], role: UInt8, theirs: [UInt8], ours: [UInt8]) -> [UInt8] {
        let message = label + [role] + theirs + ours
        var out = [UInt8](repeating: 0, count: 32)
        key.withUnsafeBytes { k in
            message.withUnsafeBytes { m in
                out.withUnsafeMutableBufferPointer { o in
                                        kiln_hmac_sha256(k.baseAddress, k.count, m.baseAddress, m.count, o.baseAddress)
                }
            }
        }
        return out
    }

    /// Compares in time independent of where the bytes differ.
    public static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var diff: UInt8 = 0
        for i in a.indices { diff |= a[i] ^ b[i] }
        return diff == 0
    }

    /// A fresh random challenge (getrandom(2)).
    public static func challenge() -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: ChannelMessage.challengeSize)
        var generator = SystemRandomNumberGenerator()
        for i in bytes.indices { bytes[i] = generator.next() }
        return bytes
    }

    /// Reads a key file: its bytes without surrounding whitespace, at least 16 of them.
    public static func loadKey(path: String) throws(WANOptError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw WANOptError("cannot open the pre-shared key file \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0, errno == EINTR { continue }
            guard n >= 0 else { throw WANOptError("cannot read the pre-shared key file \(path): \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            bytes += buffer[0..<n]
            guard bytes.count <= 1 << 16 else { throw WANOptError("pre-shared key file \(path) is over 64 KiB") }
        }
        let isSpace: (UInt8) -> Bool = { $0 == 0x20 || $0 == 0x0a || $0 == 0x0d || $0 == 0x09 }
        while let last = bytes.last, isSpace(last) { bytes.removeLast() }
        while let first = bytes.first, isSpace(first) { bytes.removeFirst() }
        guard bytes.count >= 16 else {
            throw WANOptError("pre-shared key in \(path) has \(bytes.count) bytes; use at least 16 (e.g. 32 random bytes, hex)")
        }
        return bytes
    }
}

/// A WAN optimizer setup or configuration error, with what to do about it.
public struct WANOptError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// WireGuard's four message types and their fixed layouts (little-endian integers).
public enum MessageType: UInt8, Sendable {
    case initiation = 1
    case response = 2
    case cookieReply = 3
    case transport = 4
}

public enum MessageSize {
    public static let initiation = 148
    public static let response = 92
    public static let cookieReply = 64
    /// Header (type, receiver index, counter) before the ciphertext.
    public static let transportHeader = 16
    /// An empty (keepalive) transport message: header and tag.
    public static let transportMinimum = 32
}

/// Why a datagram was dropped. Every rejected input increments exactly one of these counters.
public enum DropReason: Int, Error, CaseIterable, Sendable, CustomStringConvertible {
    case tooShort, unknownType, badLength, badMAC1, badMAC2, cookieSent, unknownPeer, decryptFailed
    case staleTimestamp, unknownIndex, replayed, expiredKey, sourceNotAllowed, noHandshake, tooLarge

    public var description: String {
        switch self {
        case .tooShort: "too short"
        case .unknownType: "unknown type"
        case .badLength: "bad length"
        case .badMAC1: "bad mac1"
        case .badMAC2: "bad mac2 under load"
        case .cookieSent: "answered with cookie"
        case .unknownPeer: "unknown peer"
        case .decryptFailed: "decryption failed"
        case .staleTimestamp: "stale timestamp"
        case .unknownIndex: "unknown receiver index"
        case .replayed: "replayed counter"
        case .expiredKey: "expired key"
        case .sourceNotAllowed: "source not in allowed IPs"
        case .noHandshake: "no matching handshake"
        case .tooLarge: "too large"
        }
    }
}

/// Classifies a datagram by its header alone: the type (a little-endian 32-bit word whose upper three bytes
/// must be zero) and the exact or minimum length of that type.
@inline(__always)
public func classify(_ bytes: UnsafeRawBufferPointer, maximumLength: Int = 65535) -> Result<MessageType, DropReason> {
    guard bytes.count >= 4 else { return .failure(.tooShort) }
    guard bytes[1] == 0, bytes[2] == 0, bytes[3] == 0, let type = MessageType(rawValue: bytes[0]) else {
        return .failure(.unknownType)
    }
    switch type {
    case .initiation: return bytes.count == MessageSize.initiation ? .success(type) : .failure(.badLength)
    case .response: return bytes.count == MessageSize.response ? .success(type) : .failure(.badLength)
    case .cookieReply: return bytes.count == MessageSize.cookieReply ? .success(type) : .failure(.badLength)
    case .transport:
        if bytes.count < MessageSize.transportMinimum { return .failure(.tooShort) }
        if bytes.count > maximumLength { return .failure(.tooLarge) }
        return .success(type)
    }
}

@inline(__always)
func readLE32(_ b: UnsafeRawBufferPointer, _ offset: Int) -> UInt32 {
    UInt32(b[offset]) | UInt32(b[offset + 1]) << 8 | UInt32(b[offset + 2]) << 16 | UInt32(b[offset + 3]) << 24
}

@inline(__always)
func readLE64(_ b: UnsafeRawBufferPointer, _ offset: Int) -> UInt64 {
    UInt64(readLE32(b, offset)) | UInt64(readLE32(b, offset + 4)) << 32
}

func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }

/// TAI64N: 8 bytes of big-endian seconds since 1970 offset by 2^62 + 10, then 4 bytes of big-endian nanoseconds.
public enum TAI64N {
    public static func encode(seconds: UInt64, nanoseconds: UInt32) -> [UInt8] {
        let s = 0x4000_0000_0000_000A &+ seconds
        return (0..<8).map { UInt8(truncatingIfNeeded: s >> (56 - 8 * $0)) }
            + (0..<4).map { UInt8(truncatingIfNeeded: nanoseconds >> (24 - 8 * UInt32($0))) }
    }

    /// True when `a` is strictly later than `b` (big-endian byte order compares as numbers).
    public static func isAfter(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        for i in 0..<12 where a[i] != b[i] { return a[i] > b[i] }
        return false
    }
}

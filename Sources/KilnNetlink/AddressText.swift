/// Text forms of raw IPv4/IPv6 addresses, for error messages and logs (the module takes bytes, not parsed types).
public enum AddressText {
    /// `10.0.0.1`, `2001:db8::1` (RFC 5952: lowercase, longest run of zero groups as `::`), or hex otherwise.
    public static func format(_ bytes: [UInt8]) -> String {
        switch bytes.count {
        case 4:
            return bytes.map(String.init).joined(separator: ".")
        case 16:
            let groups = (0..<8).map { UInt16(bytes[2 * $0]) << 8 | UInt16(bytes[2 * $0 + 1]) }
            var best = (start: -1, length: 0)
            var index = 0
            while index < 8 {
                guard groups[index] == 0 else { index += 1; continue }
                var end = index
                while end < 8 && groups[end] == 0 { end += 1 }
                if end - index > best.length { best = (index, end - index) }
                index = end
            }
            let hex = groups.map { String($0, radix: 16) }
            guard best.length >= 2 else { return hex.joined(separator: ":") }
            let head = hex[..<best.start].joined(separator: ":")
            let tail = hex[(best.start + best.length)...].joined(separator: ":")
            return head + "::" + tail
        default:
            return bytes.map { byte in
                let text = String(byte, radix: 16)
                return byte < 16 ? "0" + text : text
            }.joined(separator: ":")
        }
    }

    /// `10.0.0.0/24`.
    public static func format(_ bytes: [UInt8], prefix: UInt8) -> String {
        "\(format(bytes))/\(prefix)"
    }
}

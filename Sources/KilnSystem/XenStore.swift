import Glibc

/// A client of xenstored's socket (the protocol of Xen's `xs_wire.h`): a 16-byte header — type, request id,
/// transaction id, payload length, little-endian u32s — then the payload. Kiln needs only read and write, to
/// attach a guest's vif where the toolstack says (`backend/vif/<domid>/<n>/bridge`) and to report it done.
public struct XenStore {
    /// `xsd_sockmsg_type` values used here.
    public enum MessageType: UInt32, Sendable {
        case read = 2
        case write = 11
        case error = 16
    }

    public struct Message: Equatable, Sendable {
        public var type: UInt32
        public var requestID: UInt32
        public var transaction: UInt32
        public var payload: [UInt8]
        public init(type: UInt32, requestID: UInt32 = 0, transaction: UInt32 = 0, payload: [UInt8]) {
            self.type = type; self.requestID = requestID; self.transaction = transaction; self.payload = payload
        }

        /// `XS_READ path\0`
        public static func read(_ path: String, requestID: UInt32 = 0) -> Message {
            Message(type: MessageType.read.rawValue, requestID: requestID, payload: Array(path.utf8) + [0])
        }

        /// `XS_WRITE path\0value` (the value has no terminator).
        public static func write(_ path: String, _ value: String, requestID: UInt32 = 0) -> Message {
            Message(type: MessageType.write.rawValue, requestID: requestID, payload: Array(path.utf8) + [0] + Array(value.utf8))
        }

        /// The wire bytes.
        public var encoded: [UInt8] {
            var out: [UInt8] = []
            for field in [type, requestID, transaction, UInt32(payload.count)] {
                out += [UInt8(field & 0xff), UInt8(field >> 8 & 0xff), UInt8(field >> 16 & 0xff), UInt8(field >> 24)]
            }
            return out + payload
        }

        /// The payload length a header announces; nil if the header is short or the length exceeds
        /// XENSTORE_PAYLOAD_MAX (4096).
        public static func payloadLength(header: ArraySlice<UInt8>) -> Int? {
            guard header.count >= 16 else { return nil }
            let b = Array(header.prefix(16))
            let length = Int(b[12]) | Int(b[13]) << 8 | Int(b[14]) << 16 | Int(b[15]) << 24
            return length <= 4096 ? length : nil
        }

        /// Decodes one whole message (header and payload).
        public init?(decoding bytes: [UInt8]) {
            guard let length = Message.payloadLength(header: bytes[...]), bytes.count == 16 + length else { return nil }
            func u32(_ at: Int) -> UInt32 { UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24 }
            self.init(type: u32(0), requestID: u32(4), transaction: u32(8), payload: Array(bytes[16...]))
        }
    }

    /// A request xenstored refused, with the errno name it sent (`ENOENT`, `EACCES`, …).
    public struct Failure: Error, Equatable, CustomStringConvertible {
        public var path: String
        public var reason: String
        public var description: String { "xenstore \(path): \(reason)" }
    }

    private let socket: FileDescriptor

    /// Connects to xenstored's socket.
    public init(path: String) throws(Errno) {
        socket = try UnixSocket.connect(path)
    }

    /// The value at `path`.
    public func read(_ path: String) throws -> String {
        let answer = try exchange(.read(path), path: path)
        return String(decoding: answer.payload.last == 0 ? answer.payload.dropLast() : answer.payload[...], as: UTF8.self)
    }

    public func write(_ path: String, _ value: String) throws {
        _ = try exchange(.write(path, value), path: path)
    }

    private func exchange(_ request: Message, path: String) throws -> Message {
        try socket.writeAll(request.encoded)
        let header = try socket.readExactly(16)
        guard let length = Message.payloadLength(header: header[...]) else { throw Failure(path: path, reason: "malformed reply header") }
        let payload = length > 0 ? try socket.readExactly(length) : []
        guard let answer = Message(decoding: header + payload) else { throw Failure(path: path, reason: "malformed reply") }
        if answer.type == MessageType.error.rawValue {
            throw Failure(path: path, reason: String(decoding: answer.payload.filter { $0 != 0 }, as: UTF8.self))
        }
        guard answer.type == request.type else { throw Failure(path: path, reason: "reply of type \(answer.type) to \(request.type)") }
        return answer
    }
}

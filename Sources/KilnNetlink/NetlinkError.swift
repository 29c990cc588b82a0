import KilnSystem

/// A failed netlink operation, named the way a person would say it: `add address 10.0.0.1/24 on lan: File exists`.
public struct NetlinkError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Why the operation failed.
    public enum Reason: Equatable, Sendable {
        /// The kernel answered with an error; `message` is its extended-ack text when it sent one.
        case kernel(code: Int32, message: String?)
        /// The request could not be built (bad address length, prefix, name, VLAN id).
        case invalidArgument(String)
        /// The socket failed (or timed out waiting for the kernel).
        case transport(Errno)
        /// A reply did not parse.
        case malformedReply(String)
    }

    /// What was being done: `"add address 10.0.0.1/24"`, `"set up"`, `"add VLAN 10 lan.10"`.
    public var operation: String
    /// The interface concerned, when there is one (a name, or `ifindex N` when the name is unknown).
    public var interface: String?
    public var reason: Reason

    public init(operation: String, interface: String? = nil, reason: Reason) {
        self.operation = operation
        self.interface = interface
        self.reason = reason
    }

    /// The kernel's errno, for callers that tolerate e.g. EEXIST.
    public var code: Int32? {
        switch reason {
        case .kernel(let code, _): code
        case .transport(let errno): errno.code
        default: nil
        }
    }

    /// The kernel error as an `Errno` naming this operation and interface.
    public var errno: Errno? {
        code.map { Errno($0, operation: operation, subject: interface.map { "on \($0)" }) }
    }

    public var description: String {
        let place = interface.map { "\(operation) on \($0)" } ?? operation
        switch reason {
        case .kernel(let code, let message):
            let text = Errno.message(for: code)
            guard let message, !message.isEmpty, message != text else { return "\(place): \(text)" }
            return "\(place): \(text) (kernel: \(message))"
        case .invalidArgument(let why): return "\(place): invalid argument: \(why)"
        case .transport(let errno): return "\(place): netlink socket: \(errno)"
        case .malformedReply(let why): return "\(place): malformed reply: \(why)"
        }
    }
}

/// The content of an NLMSG_ERROR message: 0 for an acknowledgement, else a negative errno, with the
/// kernel's extended-ack text (NLMSGERR_ATTR_MSG) when the socket asked for it.
public struct NetlinkAcknowledgement: Equatable, Sendable {
    /// 0 or a negative errno, as the kernel sends it.
    public var error: Int32
    /// The sequence number of the request this answers.
    public var requestSequence: UInt32
    public var message: String?
    /// Byte offset of the offending attribute in the request (NLMSGERR_ATTR_OFFS).
    public var offset: UInt32?

    public var isSuccess: Bool { error == 0 }

    /// Decodes an NLMSG_ERROR message (`struct nlmsgerr`, then optional TLVs).
    public init(_ message: NetlinkMessage) throws(NetlinkDecodeError) {
        let payload = message.payload
        guard message.type == MessageType.error, payload.count >= 4 + NetlinkMessage.headerSize else {
            throw NetlinkDecodeError("NLMSG_ERROR of \(payload.count) bytes")
        }
        error = Int32(bitPattern: payload.littleEndianUInt32(at: 0))
        requestSequence = payload.littleEndianUInt32(at: 12)
        if message.flags & MessageFlags.ackTLVs != 0 {
            // The echoed request is capped to its header for acks and when NETLINK_CAP_ACK is set.
            let echoedLength = Int(payload.littleEndianUInt32(at: 4))
            let skip = message.flags & MessageFlags.capped != 0 ? NetlinkMessage.headerSize : align4(echoedLength)
            let start = 4 + skip
            guard start <= payload.count else { throw NetlinkDecodeError("NLMSG_ERROR TLVs past the end") }
            let tlvs = try NetlinkAttribute.decodeAll(payload[start...])
            self.message = tlvs.first(ExtendedAckAttribute.message)?.string
            self.offset = tlvs.first(ExtendedAckAttribute.offset)?.u32
        }
    }
}

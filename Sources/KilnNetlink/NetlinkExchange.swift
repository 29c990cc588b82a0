import KilnSystem

/// The request/reply loop under `NetlinkSession`'s calls.
extension NetlinkSession {
    /// Sends a request that expects only an acknowledgement; on failure names the interface by `index`.
    func acknowledge(_ request: NetlinkMessage, operation: String, index: Int32?) throws(NetlinkError) {
        do {
            _ = try execute(request, operation: operation, interface: nil)
        } catch {
            var named = error
            if let index {
                // Look the name up only when the kernel answered; after a timeout another request would wait too.
                if case .kernel = error.reason { named.interface = interfaceName(index) } else { named.interface = "ifindex \(index)" }
            }
            throw named
        }
    }

    /// Sends a dump request and returns the data messages, retrying when the kernel flags the dump as
    /// interrupted (the table changed while it was being read).
    func dump(_ request: NetlinkMessage, operation: String) throws(NetlinkError) -> [NetlinkMessage] {
        var attempt = 0
        while true {
            let replies = try execute(request, operation: operation, interface: nil)
            let interrupted = replies.contains { $0.flags & MessageFlags.dumpInterrupted != 0 }
            if !interrupted || attempt == 3 { return replies }
            attempt += 1
        }
    }

    /// Sends `request` with the next sequence number and collects the data replies until the exchange ends:
    /// an ACK or error for requests, NLMSG_DONE for dumps, the first reply for a plain get.
    func execute(_ request: NetlinkMessage, operation: String, interface: String?) throws(NetlinkError) -> [NetlinkMessage] {
        var message = request
        message.sequence = nextSequence()
        message.portID = 0
        let isDump = message.flags & MessageFlags.dump == MessageFlags.dump
        let wantsAck = message.flags & MessageFlags.ack != 0
        do {
            try transport.send(message.encoded())
        } catch {
            throw NetlinkError(operation: operation, interface: interface, reason: .transport(error))
        }
        var replies: [NetlinkMessage] = []
        while true {
            let datagram: [NetlinkMessage]
            do {
                let count = try transport.receive(into: &receiveBuffer)
                datagram = try NetlinkMessage.decodeAll(receiveBuffer[0..<count])
            } catch let error as Errno {
                throw NetlinkError(operation: operation, interface: interface, reason: .transport(error))
            } catch {
                throw NetlinkError(operation: operation, interface: interface, reason: .malformedReply("\(error)"))
            }
            for reply in datagram where reply.sequence == message.sequence {
                switch reply.type {
                case MessageType.error:
                    let ack: NetlinkAcknowledgement
                    do { ack = try NetlinkAcknowledgement(reply) } catch {
                        throw NetlinkError(operation: operation, interface: interface, reason: .malformedReply(error.description))
                    }
                    if !ack.isSuccess {
                        throw NetlinkError(operation: operation, interface: interface, reason: .kernel(code: -ack.error, message: ack.message))
                    }
                    return replies
                case MessageType.done:
                    if reply.payload.count >= 4 {
                        let code = Int32(bitPattern: reply.payload.littleEndianUInt32(at: 0))
                        if code < 0 { throw NetlinkError(operation: operation, interface: interface, reason: .kernel(code: -code, message: nil)) }
                    }
                    return replies
                case MessageType.noop:
                    continue
                default:
                    replies.append(reply)
                    if !isDump && !wantsAck && reply.flags & MessageFlags.multi == 0 { return replies }
                }
            }
        }
    }

    /// The name of `index` for an error message, or `ifindex N` when it cannot be found.
    func interfaceName(_ index: Int32) -> String {
        (try? link(index: index).name) ?? "ifindex \(index)"
    }

    func decode<T>(operation: String, interface: String? = nil, _ body: () throws(NetlinkDecodeError) -> T) throws(NetlinkError) -> T {
        do { return try body() } catch {
            throw NetlinkError(operation: operation, interface: interface, reason: .malformedReply(error.description))
        }
    }
}

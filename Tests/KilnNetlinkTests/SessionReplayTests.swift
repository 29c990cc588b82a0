import Glibc
import KilnSystem
import Testing
@testable import KilnNetlink

/// Replays recorded kernel replies, each stamped with the sequence number of the request just sent.
final class ReplayTransport: NetlinkTransport {
    let portID: UInt32 = 4242
    var replies: [[UInt8]]
    var sent: [NetlinkMessage] = []

    init(_ replies: [[UInt8]]) { self.replies = replies }

    func send(_ bytes: [UInt8]) throws(Errno) {
        guard let message = try? NetlinkMessage.decodeAll(bytes).first else { throw Errno(EINVAL, operation: "send") }
        sent.append(message)
    }

    func receive(into buffer: inout [UInt8]) throws(Errno) -> Int {
        guard !replies.isEmpty, let sequence = sent.last?.sequence,
            var messages = try? NetlinkMessage.decodeAll(replies.removeFirst())
        else { throw Errno(EAGAIN, operation: "receive", subject: "netlink reply") }
        for i in messages.indices { messages[i].sequence = sequence }
        let datagram = messages.flatMap { $0.encoded() }
        buffer.replaceSubrange(0..<datagram.count, with: datagram)
        return datagram.count
    }
}

@Suite struct SessionReplayTests {
    @Test func kernelErrorNamesOperationInterfaceAndExtendedAck() throws {
        // The VLAN request fails; the session then looks the parent's name up for the message.
        let transport = ReplayTransport([bytes(hex: Golden.vlanUnsupported), bytes(hex: Golden.linkBridge)])
        let session = NetlinkSession(socket: transport)
        do {
            try session.addVLAN(parent: 2, id: 5, name: "x")
            Issue.record("VLAN creation reported success")
        } catch {
            #expect(error.description == "add VLAN 5 x on br0: Operation not supported (kernel: Unknown device type)")
            #expect(error.code == EOPNOTSUPP)
            #expect(error.errno?.description == "add VLAN 5 x on br0: Operation not supported")
        }
        #expect(transport.sent.map(\.type) == [MessageType.newLink, MessageType.getLink])
        #expect(transport.sent[0].sequence != transport.sent[1].sequence)
    }

    @Test func dumpReadsUntilDone() throws {
        let transport = ReplayTransport([bytes(hex: Golden.addressDump), bytes(hex: Golden.addressDumpDone)])
        let addresses = try NetlinkSession(socket: transport).addresses()
        #expect(addresses.map(\.text) == ["10.0.0.1/24", "2001:db8::1/64"])
        #expect(transport.replies.isEmpty)
    }

    @Test func silenceIsATransportErrorNotAHang() {
        let session = NetlinkSession(socket: ReplayTransport([]))
        #expect(throws: NetlinkError(operation: "set up", interface: "ifindex 3",
                                     reason: .transport(Errno(EAGAIN, operation: "receive", subject: "netlink reply")))) {
            try session.setUp(index: 3)
        }
    }
}

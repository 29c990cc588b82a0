import KilnConfig
import KilnDedup
import Testing
@testable import KilnWANOpt

@Suite struct FrameTests {
    static let client = SocketAddress(ip: .v4(IPv4Address(0x0a01_0002)), port: 40000)
    static let server = SocketAddress(ip: .v4(IPv4Address(0x0a02_0002)), port: 5201)
    static let server6 = try! SocketAddress("[2001:db8::2]:443")
    static let client6 = try! SocketAddress("[2001:db8:1::7]:50000")

    static let messages: [ChannelMessage] = [
        .hello(version: 1, codec: 1, challenge: Array(0..<32)),
        .auth(proof: Array(repeating: 0xab, count: 32)),
        .open(flow: 1, destination: server, source: client),
        .open(flow: 4, destination: server6, source: client6),
        .data(flow: 3, payload: Array("hello".utf8)),
        .data(flow: 3, payload: []),
        .close(flow: 3),
        .window(flow: 7, increment: 65536),
        .reset(flow: 9, reason: "connect to 10.2.0.2:5201: Connection refused"),
        .need(flow: 5, chunk: ChunkID(bytes: (1, 2, 3, 0xffff_ffff_ffff_ffff))),
        .supply(flow: 5, payload: [1, 2, 3]),
    ]

    @Test func everyMessageRoundTrips() throws {
        for message in Self.messages {
            let wire = message.frame.encoded()
            var parser = FrameParser()
            parser.append(wire)
            let frame = try #require(try parser.next())
            #expect(try ChannelMessage.decode(frame) == message)
            #expect(try parser.next() == nil)
            #expect(parser.pending == 0)
        }
    }

    @Test func goldenOpenBytes() {
        // type 3, flow 1, length 13; family 4, 10.2.0.2:5201, 10.1.0.2:40000
        let wire = ChannelMessage.open(flow: 1, destination: Self.server, source: Self.client).frame.encoded()
        #expect(wire == [3, 0, 0, 0, 1, 0, 0, 0, 13, 4, 10, 2, 0, 2, 0x14, 0x51, 10, 1, 0, 2, 0x9c, 0x40])
    }

    @Test func byteByByteFeedingYieldsTheSameFrames() throws {
        var stream: [UInt8] = []
        for m in Self.messages { m.frame.encode(into: &stream) }
        var parser = FrameParser()
        var got: [ChannelMessage] = []
        for byte in stream {
            parser.append([byte])
            while let frame = try parser.next() { got.append(try ChannelMessage.decode(frame)) }
        }
        #expect(got == Self.messages)
    }

    @Test func oversizedLengthEndsTheChannel() {
        var parser = FrameParser()
        parser.append([4, 0, 0, 0, 1, 0x7f, 0xff, 0xff, 0xff])
        #expect(throws: FrameError(flow: nil, "frame of 2147483647 bytes is over the 1048576-byte limit")) { try parser.next() }
    }

    @Test func unknownTypeIsSkippedWithAFlowError() throws {
        var parser = FrameParser()
        parser.append([0x42, 0, 0, 0, 9, 0, 0, 0, 2, 0xde, 0xad] + ChannelMessage.close(flow: 9).frame.encoded())
        #expect(throws: FrameError(flow: 9, "unknown frame type 66 (2 bytes skipped)")) { try parser.next() }
        #expect(try ChannelMessage.decode(try #require(try parser.next())) == .close(flow: 9))
    }

    @Test func malformedPayloadsNameTheirFlow() {
        let cases: [(ChannelFrame, FrameError)] = [
            (ChannelFrame(.open, flow: 3, payload: [4, 10, 2, 0]), FrameError(flow: 3, "open of 4 bytes, expected 13")),
            (ChannelFrame(.open, flow: 3, payload: [5]), FrameError(flow: 3, "open without an address family (4 or 6)")),
            (ChannelFrame(.window, flow: 3, payload: [0, 0, 0, 0]), FrameError(flow: 3, "window update of 0 bytes")),
            (ChannelFrame(.window, flow: 3, payload: [1]), FrameError(flow: 3, "window update of 1 bytes, expected 4")),
            (ChannelFrame(.close, flow: 3, payload: [1]), FrameError(flow: 3, "close of 1 bytes, expected 0")),
            (ChannelFrame(.need, flow: 3, payload: [1, 2]), FrameError(flow: 3, "chunk request of 2 bytes, expected 32")),
            (ChannelFrame(.hello, flow: 3, payload: []), FrameError(flow: 3, "hello frame on a flow (only flow 0 carries it)")),
            (ChannelFrame(.data, flow: 0, payload: [1]), FrameError(flow: nil, "data frame on flow 0")),
            (ChannelFrame(.hello, flow: 0, payload: [1, 2]), FrameError(flow: nil, "hello of 2 bytes, expected 34")),
        ]
        for (frame, error) in cases {
            #expect(throws: error) { try ChannelMessage.decode(frame) }
        }
    }

    @Test func authProofsDependOnRoleKeyAndChallenges() {
        let key = Array("0123456789abcdef0123456789abcdef".utf8)
        let a = Array(repeating: UInt8(1), count: 32), b = Array(repeating: UInt8(2), count: 32)
        let proof = ChannelAuth.proof(key: key, role: ChannelAuth.connectorRole, theirs: a, ours: b)
        #expect(proof.count == 32)
        #expect(proof == ChannelAuth.proof(key: key, role: ChannelAuth.connectorRole, theirs: a, ours: b))
        #expect(proof != ChannelAuth.proof(key: key, role: ChannelAuth.acceptorRole, theirs: a, ours: b))
        #expect(proof != ChannelAuth.proof(key: key, role: ChannelAuth.connectorRole, theirs: b, ours: a))
        // (HMAC pads keys with zeros, so a different key must differ in a byte, not by a trailing zero.)
        #expect(proof != ChannelAuth.proof(key: Array(key.dropLast()) + [0x67], role: ChannelAuth.connectorRole, theirs: a, ours: b))
        #expect(ChannelAuth.equal(proof, proof) && !ChannelAuth.equal(proof, Array(proof.reversed())))
        #expect(ChannelAuth.challenge() != ChannelAuth.challenge())
    }

    @Test func socketAddressText() throws {
        #expect(try SocketAddress("10.9.1.1:7800") == SocketAddress(ip: try IPAddress("10.9.1.1"), port: 7800))
        #expect(try SocketAddress("[2001:db8::1]:7800").description == "[2001:db8::1]:7800")
        #expect(throws: ValueError.self) { try SocketAddress("10.9.1.1") }
        #expect(throws: ValueError.self) { try SocketAddress("10.9.1.1:0") }
        #expect(throws: ValueError.self) { try SocketAddress("[::1]7800") }
    }
}

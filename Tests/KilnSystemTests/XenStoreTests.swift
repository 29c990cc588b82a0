import Testing
@testable import KilnSystem

/// xenstored's wire format (xs_wire.h): little-endian header of type, request id, transaction id, length.
@Suite struct XenStoreTests {
    @Test func readAndWriteEncodeAsXenstoredExpects() {
        #expect(XenStore.Message.read("a/b", requestID: 7).encoded
                == [2, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0] + Array("a/b".utf8) + [0])
        // A write's value has no terminator.
        #expect(XenStore.Message.write("p", "connected").encoded
                == [11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 11, 0, 0, 0] + Array("p".utf8) + [0] + Array("connected".utf8))
    }

    @Test func repliesDecodeAndBadLengthsAreRefused() {
        let reply = [2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0] + Array("br-lan".utf8)
        #expect(XenStore.Message(decoding: reply) == XenStore.Message(type: 2, requestID: 1, payload: Array("br-lan".utf8)))
        #expect(XenStore.Message(decoding: Array(reply.dropLast())) == nil)
        #expect(XenStore.Message(decoding: Array(reply.prefix(10))) == nil)
        // Over XENSTORE_PAYLOAD_MAX.
        #expect(XenStore.Message.payloadLength(header: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x10, 0, 0][...]) == nil)
    }
}

import Glibc

/// One TCP connection to the peer optimizer: framing, outgoing queue and the authentication handshake.
final class PeerChannel {
    enum State: Equatable { case connecting, handshake, authenticated }

    let fd: Int32
    let connector: Bool
    let remote: String
    var state: State
    var parser = FrameParser()
    var out = ByteQueue()
    let ourChallenge = ChannelAuth.challenge()
    var sentProof = false
    var peerChallenge: [UInt8]?
    let started = MonotonicTime.now()
    var bytesOut: UInt64 = 0
    var bytesIn: UInt64 = 0

    init(fd: Int32, connector: Bool, remote: String, connecting: Bool) {
        self.fd = fd; self.connector = connector; self.remote = remote
        state = connecting ? .connecting : .handshake
    }

    var role: UInt8 { connector ? ChannelAuth.connectorRole : ChannelAuth.acceptorRole }
    var peerRole: UInt8 { connector ? ChannelAuth.acceptorRole : ChannelAuth.connectorRole }

    /// Queues a frame; returns its size on the wire.
    @discardableResult
    func send(_ message: ChannelMessage) -> Int {
        let frame = message.frame
        var bytes: [UInt8] = []
        bytes.reserveCapacity(ChannelFrame.headerSize + frame.payload.count)
        frame.encode(into: &bytes)
        out.append(bytes)
        bytesOut += UInt64(bytes.count)
        return bytes.count
    }

    func sendHello(codec: UInt8) { send(.hello(version: ChannelAuth.version, codec: codec, challenge: ourChallenge)) }
}

/// Monotonic milliseconds.
enum MonotonicTime {
    static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1000 + UInt64(ts.tv_nsec) / 1_000_000
    }
}

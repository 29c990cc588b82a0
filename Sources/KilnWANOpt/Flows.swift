import Glibc
import KilnDedup

/// Byte counts of one flow, or of a whole side. "lan" is the local socket, "wan" the peer channel.
public struct FlowCounters: Sendable, Equatable {
    /// Bytes read from the local socket (to be sent to the peer).
    public var lanIn: UInt64 = 0
    /// Bytes written to the local socket (received from the peer).
    public var lanOut: UInt64 = 0
    /// ChannelFrame bytes this flow put on the channel (headers included).
    public var wanOut: UInt64 = 0
    /// ChannelFrame bytes this flow received from the channel.
    public var wanIn: UInt64 = 0
    /// Chunk requests answered for the peer, and made to it.
    public var chunksSupplied: UInt64 = 0
    public var chunksRequested: UInt64 = 0

    public init() {}

    /// 1 − WAN bytes / LAN bytes over both directions; 0 when nothing moved.
    public var reduction: Double {
        let lan = Double(lanIn + lanOut), wan = Double(wanOut + wanIn)
        return lan == 0 ? 0 : 1 - wan / lan
    }

    static func += (a: inout FlowCounters, b: FlowCounters) {
        a.lanIn += b.lanIn; a.lanOut += b.lanOut; a.wanOut += b.wanOut; a.wanIn += b.wanIn
        a.chunksSupplied += b.chunksSupplied; a.chunksRequested += b.chunksRequested
    }
}

/// One optimized TCP connection: a local socket on this side, carried over the channel as flow `id`.
final class OptimizedFlow {
    let id: UInt32
    let fd: Int32
    let client: SocketAddress
    let destination: SocketAddress
    /// This side connected to the destination (the peer's client asked for it) and waits for the connect.
    var connecting: Bool
    var encoder: any FlowEncoder
    var decoder: any FlowDecoder
    /// Bytes this side may still read and send before the peer grants more.
    var credit: Int
    /// Decoded bytes waiting for the local socket.
    var toLocal = ByteQueue()
    /// Bytes delivered locally but not yet granted back to the peer.
    var ungranted = 0
    /// The local socket reached end of stream (CLOSE sent).
    var localDone = false
    /// The peer sent CLOSE; the local socket is shut for writing once `toLocal` is empty.
    var peerDone = false
    var shutWrite = false
    /// Chunk requests sent to the peer and not yet answered: output is held back until they are.
    var pendingSupplies = 0
    /// Bytes read but not yet flushed out of the encoder (it may hold back a partial chunk).
    var unflushedSince: UInt64 = 0
    var counters = FlowCounters()

    init(id: UInt32, fd: Int32, client: SocketAddress, destination: SocketAddress, connecting: Bool,
         codecs: CodecFactory, window: Int) {
        self.id = id; self.fd = fd; self.client = client; self.destination = destination; self.connecting = connecting
        encoder = codecs.makeEncoder(); decoder = codecs.makeDecoder(); credit = window
    }

    /// Both directions closed and delivered, and the peer has delivered (granted back) every byte this side
    /// sent, so no chunk request can still come for them.
    func finished(window: Int) -> Bool {
        localDone && peerDone && toLocal.isEmpty && shutWrite && pendingSupplies == 0 && credit == window
    }
}

/// A connection passed straight through (fail-open): client socket ↔ destination socket, no peer involved.
final class DirectFlow {
    let client: Int32
    let server: Int32
    let destination: SocketAddress
    var connecting = true
    var toServer = ByteQueue()
    var toClient = ByteQueue()
    var clientDone = false
    var serverDone = false
    var serverShut = false
    var clientShut = false
    var counters = FlowCounters()

    init(client: Int32, server: Int32, destination: SocketAddress) {
        self.client = client; self.server = server; self.destination = destination
    }

    var finished: Bool { clientShut && serverShut }
}

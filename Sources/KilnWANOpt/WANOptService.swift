import Glibc
import KilnConfig

/// The WAN optimizer: accepts intercepted connections, carries them to the peer over one authenticated,
/// multiplexed channel (or straight to their destination while the peer is away), and opens the peer's flows
/// towards their destinations here. One thread, poll(2), non-blocking sockets; no call ever waits on one flow.
public final class WANOptService {
    public let config: WANOptConfig
    let key: [UInt8]
    let codecs: CodecFactory
    let log: (String) -> Void
    let window: Int

    let interceptListener: Int32
    let channelListener: Int32?
    var statusListener: Int32 = -1
    /// Connected or handshaking channels; at most one is authenticated (the active one).
    var channels: [PeerChannel] = []
    var flows: [UInt32: OptimizedFlow] = [:]
    var directs: [DirectFlow] = []
    /// Flow ids this side closed recently: late frames for them are dropped quietly, not answered.
    var recentlyClosed: [UInt32] = []
    var nextFlowID: UInt32
    var reconnectAt: UInt64 = 0
    var reconnectDelay: UInt64 = 250
    var totals = FlowCounters()
    var directTotals = FlowCounters()
    var flowsOptimized: UInt64 = 0
    var flowsDirect: UInt64 = 0
    var flowErrors: UInt64 = 0
    var channelUps: UInt64 = 0
    var closedChunks: UInt64 = 0
    var closedChunkHits: UInt64 = 0
    var buffer = [UInt8](repeating: 0, count: 64 << 10)

    /// Stop reading local sockets while this much is queued for the channel.
    static let channelHighWater = 1 << 20
    static let maxFlows = 4096
    static let maxPendingChannels = 8
    static let handshakeTimeoutMs: UInt64 = 10_000
    static let flushDelayMs: UInt64 = 5

    /// Opens the listeners (intercept, channel, status). Interception rules are installed separately
    /// (`Interception.install`), so tests can run the service with or without them.
    public init(config: WANOptConfig, key: [UInt8], codecs: CodecFactory = .passThrough, log: @escaping (String) -> Void) throws(WANOptError) {
        self.config = config; self.key = key; self.codecs = codecs; self.log = log
        window = Int(config.window)
        nextFlowID = config.peer != nil ? 1 : 2
        let any4 = SocketAddress(ip: .v4(IPv4Address(0)), port: config.interceptPort)
        interceptListener = try TCP.listen(any4, transparent: true)
        if let listen = config.listen {
            do { channelListener = try TCP.listen(listen, transparent: false) } catch {
                close(interceptListener)
                throw error
            }
        } else {
            channelListener = nil
        }
        statusListener = StatusSocket.listen(path: config.statusSocket, log: log)
    }

    deinit {
        close(interceptListener)
        if let channelListener { close(channelListener) }
        if statusListener >= 0 { close(statusListener); unlink(config.statusSocket) }
        for c in channels { close(c.fd) }
        for f in flows.values { close(f.fd) }
        for d in directs { close(d.client); close(d.server) }
    }

    var activeChannel: PeerChannel? { channels.first { $0.state == .authenticated } }

    // MARK: Loop

    private enum Source {
        case intercept, channelListener, status, channel(PeerChannel), flow(OptimizedFlow)
        case directClient(DirectFlow), directServer(DirectFlow)
    }

    /// Runs until `shouldStop` returns true (checked at least every 200 ms).
    public func serve(until shouldStop: () -> Bool) {
        if config.peer != nil { reconnectAt = MonotonicTime.now() }
        while !shouldStop() { step(timeoutMs: 200) }
    }

    /// One poll round: waits at most `timeoutMs` for an event, handles what is ready.
    public func step(timeoutMs: Int32) {
        var fds: [pollfd] = []
        var sources: [Source] = []
        func add(_ fd: Int32, _ events: Int32, _ source: Source) {
            guard fd >= 0, events != 0 else { return }
            fds.append(pollfd(fd: fd, events: Int16(events), revents: 0)); sources.append(source)
        }
        let channelRoom = (activeChannel?.out.count ?? 0) < Self.channelHighWater
        add(interceptListener, POLLIN, .intercept)
        if let channelListener { add(channelListener, POLLIN, .channelListener) }
        add(statusListener, POLLIN, .status)
        for c in channels { add(c.fd, POLLIN | (c.state == .connecting || !c.out.isEmpty ? POLLOUT : 0), .channel(c)) }
        for f in flows.values {
            var events: Int32 = 0
            if f.connecting { events = POLLOUT } else {
                if !f.localDone, f.credit > 0, channelRoom { events |= POLLIN }
                if !f.toLocal.isEmpty { events |= POLLOUT }
            }
            add(f.fd, events, .flow(f))
        }
        for d in directs {
            if d.connecting { add(d.server, POLLOUT, .directServer(d)); continue }
            add(d.client, (!d.clientDone && d.toServer.count < window ? POLLIN : 0) | (d.toClient.isEmpty ? 0 : POLLOUT), .directClient(d))
            add(d.server, (!d.serverDone && d.toClient.count < window ? POLLIN : 0) | (d.toServer.isEmpty ? 0 : POLLOUT), .directServer(d))
        }
        let now = MonotonicTime.now()
        var timeout = timeoutMs
        if reconnectAt > 0 { timeout = min(timeout, Int32(reconnectAt > now ? min(reconnectAt - now, 1000) : 0)) }
        if flows.values.contains(where: { $0.unflushedSince > 0 }) { timeout = min(timeout, Int32(Self.flushDelayMs)) }
        let ready = poll(&fds, nfds_t(fds.count), timeout)
        if ready > 0 {
            for (i, p) in fds.enumerated() where p.revents != 0 {
                let readable = p.revents & Int16(POLLIN | POLLHUP | POLLERR) != 0
                let writable = p.revents & Int16(POLLOUT | POLLERR | POLLHUP) != 0
                switch sources[i] {
                case .intercept: acceptIntercepted()
                case .channelListener: acceptChannel()
                case .status: answerStatus()
                case .channel(let c): serviceChannel(c, readable: readable, writable: writable)
                case .flow(let f): serviceFlow(f, readable: readable, writable: writable)
                case .directClient(let d): serviceDirect(d, clientSide: true, readable: readable, writable: writable)
                case .directServer(let d): serviceDirect(d, clientSide: false, readable: readable, writable: writable)
                }
            }
        }
        housekeeping()
    }

    private func housekeeping() {
        let now = MonotonicTime.now()
        // Flush a held-back partial chunk only when the client has nothing more queued: it may be waiting for an
        // answer. While bytes are queued (credit ran out, or they just arrived) the chunk will complete by itself.
        for f in flows.values where f.unflushedSince > 0 && now - f.unflushedSince >= Self.flushDelayMs {
            var byte: UInt8 = 0
            if recv(f.fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT)) > 0 {
                f.unflushedSince = now
            } else {
                flushEncoder(f)
            }
        }
        for c in channels where c.state != .authenticated && now - c.started > Self.handshakeTimeoutMs {
            dropChannel(c, "no authenticated handshake within \(Self.handshakeTimeoutMs / 1000) s")
        }
        if let c = activeChannel, !c.out.isEmpty { writeChannel(c) }
        directs.removeAll { d in
            guard d.finished else { return false }
            close(d.client); close(d.server)
            directTotals += d.counters
            return true
        }
        if reconnectAt > 0, now >= reconnectAt, let peer = config.peer, !channels.contains(where: { $0.connector }) {
            reconnectAt = 0
            connectPeer(peer)
        }
    }

    // MARK: Intercepted connections

    private func acceptIntercepted() {
        while let fd = TCP.accept(interceptListener) {
            guard let destination = TCP.localAddress(fd), let client = TCP.peerAddress(fd) else { close(fd); continue }
            _ = TCP.setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY)
            if let channel = activeChannel, flows.count < Self.maxFlows {
                let id = allocateFlowID()
                let flow = OptimizedFlow(id: id, fd: fd, client: client, destination: destination, connecting: false,
                                         codecs: codecs, window: window)
                flows[id] = flow
                flowsOptimized += 1
                flow.counters.wanOut += UInt64(channel.send(.open(flow: id, destination: destination, source: client)))
                writeChannel(channel)
            } else {
                openDirect(fd, client: client, destination: destination)
            }
        }
    }

    private func allocateFlowID() -> UInt32 {
        while true {
            let id = nextFlowID
            nextFlowID = nextFlowID &+ 2
            if nextFlowID < 3 { nextFlowID = config.peer != nil ? 1 : 2 }
            if flows[id] == nil && !recentlyClosed.contains(id) { return id }
        }
    }

    /// Fail-open: the peer is away, so the connection goes to its destination directly, unoptimized.
    private func openDirect(_ fd: Int32, client: SocketAddress, destination: SocketAddress) {
        do {
            let server = try TCP.connect(to: destination, from: config.preserveSource ? client.ip : nil)
            directs.append(DirectFlow(client: fd, server: server, destination: destination))
            flowsDirect += 1
        } catch {
            log("direct \(client) -> \(destination): \(error)")
            closeWithReset(fd)
        }
    }

    func remember(closed id: UInt32) {
        recentlyClosed.append(id)
        if recentlyClosed.count > 1024 { recentlyClosed.removeFirst(recentlyClosed.count - 1024) }
    }
}

import Glibc
import KilnDedup

extension WANOptService {
    // MARK: Channel setup

    func connectPeer(_ peer: SocketAddress) {
        do {
            let fd = try TCP.connect(to: peer, from: nil)
            _ = TCP.setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY)
            channels.append(PeerChannel(fd: fd, connector: true, remote: peer.description, connecting: true))
        } catch {
            log("peer \(peer): \(error)")
            scheduleReconnect()
        }
    }

    func scheduleReconnect() {
        guard config.peer != nil else { return }
        reconnectAt = MonotonicTime.now() + reconnectDelay
        reconnectDelay = min(reconnectDelay * 2, UInt64(max(config.reconnectMaxMs, 250)))
    }

    func acceptChannel() {
        guard let listener = channelListener else { return }
        while let fd = TCP.accept(listener) {
            let remote = TCP.peerAddress(fd)?.description ?? "?"
            guard channels.filter({ $0.state != .authenticated }).count < Self.maxPendingChannels else {
                log("channel from \(remote) refused: too many unauthenticated channels")
                close(fd)
                continue
            }
            _ = TCP.setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY)
            let channel = PeerChannel(fd: fd, connector: false, remote: remote, connecting: false)
            channels.append(channel)
            channel.sendHello(codec: codecs.wireID)
            writeChannel(channel)
        }
    }

    /// Closes a channel; if it was the active one, its flows fail (their local connections are reset).
    func dropChannel(_ channel: PeerChannel, _ reason: String) {
        guard let index = channels.firstIndex(where: { $0 === channel }) else { return }
        channels.remove(at: index)
        close(channel.fd)
        let wasActive = channel.state == .authenticated
        log("channel \(channel.remote) closed: \(reason)")
        if wasActive {
            for flow in Array(flows.values) { abortFlow(flow, notifyPeer: false, "channel closed") }
        }
        if channel.connector { scheduleReconnect() }
    }

    func writeChannel(_ channel: PeerChannel) {
        let n = channel.out.write(to: channel.fd)
        if n < 0 { dropChannel(channel, "write: \(String(cString: strerror(Int32(-n))))") }
    }

    func serviceChannel(_ channel: PeerChannel, readable: Bool, writable: Bool) {
        if channel.state == .connecting {
            guard writable else { return }
            let error = TCP.pendingError(channel.fd)
            guard error == 0 else { dropChannel(channel, "connect: \(String(cString: strerror(error)))"); return }
            channel.state = .handshake
            channel.sendHello(codec: codecs.wireID)
        }
        if writable { writeChannel(channel) }
        guard readable, channels.contains(where: { $0 === channel }) else { return }
        // Bounded per round so one busy channel read cannot starve local sockets.
        for _ in 0..<16 {
            let n = buffer.withUnsafeMutableBytes { readSome(channel.fd, into: $0) }
            guard let n else { break }
            if n == 0 { dropChannel(channel, "peer closed the connection"); return }
            if n < 0 { dropChannel(channel, "read: \(String(cString: strerror(Int32(-n))))"); return }
            channel.bytesIn += UInt64(n)
            buffer.withUnsafeBytes { channel.parser.append(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            while true {
                let frame: ChannelFrame?
                do { frame = try channel.parser.next() } catch {
                    if let flow = error.flow { flowError(flow, on: channel, error.message); continue }
                    dropChannel(channel, error.message)
                    return
                }
                guard let frame else { break }
                let message: ChannelMessage
                do { message = try ChannelMessage.decode(frame) } catch {
                    if let flow = error.flow { flowError(flow, on: channel, error.message); continue }
                    dropChannel(channel, error.message)
                    return
                }
                handle(message, size: ChannelFrame.headerSize + frame.payload.count, on: channel)
                guard channels.contains(where: { $0 === channel }) else { return }
            }
            if n < buffer.count { break }
        }
        if !channel.out.isEmpty { writeChannel(channel) }
    }

    // MARK: Messages

    private func handle(_ message: ChannelMessage, size: Int, on channel: PeerChannel) {
        if channel.state != .authenticated {
            switch message {
            case .hello(let version, let codec, let challenge):
                guard version == ChannelAuth.version else {
                    dropChannel(channel, "peer speaks channel version \(version), this side \(ChannelAuth.version)"); return
                }
                guard codec == codecs.wireID else {
                    dropChannel(channel, "peer encodes flows with codec \(codec), this side with \(codecs.wireID) (\(codecs.name)); "
                        + "give both sides a store, or neither"); return
                }
                guard !channel.sentProof else { dropChannel(channel, "second hello"); return }
                channel.sentProof = true
                channel.peerChallenge = challenge
                channel.send(.auth(proof: ChannelAuth.proof(key: key, role: channel.role, theirs: challenge, ours: channel.ourChallenge)))
            case .auth(let proof):
                guard let theirs = channel.peerChallenge else { dropChannel(channel, "auth before hello"); return }
                let expected = ChannelAuth.proof(key: key, role: channel.peerRole, theirs: channel.ourChallenge, ours: theirs)
                guard ChannelAuth.equal(proof, expected) else {
                    dropChannel(channel, "peer failed authentication (pre-shared keys differ?)"); return
                }
                becomeActive(channel)
            default:
                dropChannel(channel, "\(message.frame.type) frame before authentication")
            }
            return
        }
        switch message {
        case .hello, .auth:
            dropChannel(channel, "handshake frame on an authenticated channel")
        case .open(let id, let destination, let source):
            openFromPeer(id, destination: destination, source: source, size: size, on: channel)
        case .data(let id, let payload):
            guard let flow = knownFlow(id, on: channel) else { return }
            flow.counters.wanIn += UInt64(size)
            guard !flow.peerDone else { flowError(id, on: channel, "data after close"); return }
            decode(payload, for: flow, on: channel)
        case .supply(let id, let payload):
            guard let flow = knownFlow(id, on: channel) else { return }
            flow.counters.wanIn += UInt64(size)
            guard flow.pendingSupplies > 0 else { flowError(id, on: channel, "chunk supplied that was not asked for"); return }
            flow.pendingSupplies -= 1
            decode(payload, for: flow, on: channel)
        case .close(let id):
            guard let flow = knownFlow(id, on: channel) else { return }
            flow.counters.wanIn += UInt64(size)
            if flow.peerDone { flowError(id, on: channel, "second close"); return }
            flow.peerDone = true
            deliver(flow)
        case .window(let id, let increment):
            guard let flow = knownFlow(id, on: channel) else { return }
            flow.counters.wanIn += UInt64(size)
            guard flow.credit + Int(increment) <= window else {
                flowError(id, on: channel, "window update to \(flow.credit + Int(increment)) bytes is over the \(window)-byte window")
                return
            }
            flow.credit += Int(increment)
            finishIfDone(flow)
        case .reset(let id, let reason):
            guard let flow = flows[id] else { return }
            log("flow \(id) \(flow.client) -> \(flow.destination) reset by peer: \(reason)")
            abortFlow(flow, notifyPeer: false, nil)
        case .need(let id, let chunk):
            guard let flow = knownFlow(id, on: channel) else { return }
            flow.counters.wanIn += UInt64(size)
            guard let payload = flow.encoder.supply(chunk) else {
                flowError(id, on: channel, "peer asked for a chunk this side no longer holds")
                return
            }
            flow.counters.chunksSupplied += 1
            flow.counters.wanOut += UInt64(channel.send(.supply(flow: id, payload: payload)))
        }
    }

    private func becomeActive(_ channel: PeerChannel) {
        for other in channels where other !== channel && other.state == .authenticated {
            dropChannel(other, "replaced by a new channel from \(channel.remote)")
        }
        channel.state = .authenticated
        channelUps += 1
        reconnectDelay = 250
        log("channel \(channel.remote) authenticated; new flows are optimized (codec \(codecs.name))")
    }

    /// The flow a frame names, or nil after answering for an unknown one (late frames for a flow this side
    /// closed are dropped quietly).
    private func knownFlow(_ id: UInt32, on channel: PeerChannel) -> OptimizedFlow? {
        if let flow = flows[id] { return flow }
        if !recentlyClosed.contains(id) { flowError(id, on: channel, "frame for unknown flow") }
        return nil
    }

    /// A frame for `id` was malformed or made no sense: the flow (if any) ends, the peer is told, the error logged.
    func flowError(_ id: UInt32, on channel: PeerChannel, _ message: String) {
        flowErrors += 1
        log("flow \(id): \(message)")
        if let flow = flows[id] {
            abortFlow(flow, notifyPeer: true, message)
        } else if id != 0, !recentlyClosed.contains(id) {
            remember(closed: id)
            channel.send(.reset(flow: id, reason: message))
        }
    }

    private func openFromPeer(_ id: UInt32, destination: SocketAddress, source: SocketAddress, size: Int, on channel: PeerChannel) {
        // The connecting side numbers its flows odd, the accepting side even: a peer's id of this side's
        // parity, or one in use, is forged.
        let peerParity: UInt32 = channel.connector ? 0 : 1
        guard id % 2 == peerParity else { flowError(id, on: channel, "open with a flow id of the wrong parity"); return }
        guard flows[id] == nil else { flowError(id, on: channel, "open for a flow id already in use"); return }
        guard flows.count < Self.maxFlows else {
            channel.send(.reset(flow: id, reason: "too many flows")); return
        }
        do {
            let fd = try TCP.connect(to: destination, from: config.preserveSource ? source.ip : nil)
            let flow = OptimizedFlow(id: id, fd: fd, client: source, destination: destination, connecting: true,
                                     codecs: codecs, window: window)
            flow.counters.wanIn += UInt64(size)
            flows[id] = flow
            flowsOptimized += 1
            recentlyClosed.removeAll { $0 == id }
        } catch {
            log("flow \(id) \(source) -> \(destination): \(error)")
            remember(closed: id)
            channel.send(.reset(flow: id, reason: error.description))
        }
    }

    private func decode(_ payload: [UInt8], for flow: OptimizedFlow, on channel: PeerChannel) {
        var output: [UInt8] = []
        let missing: [ChunkID]
        do {
            missing = try payload.withUnsafeBytes { (raw) throws(CodecError) in try flow.decoder.decode(raw, into: &output) }
        } catch {
            flowError(flow.id, on: channel, "undecodable payload: \(error)")
            return
        }
        for chunk in missing {
            flow.counters.chunksRequested += 1
            flow.pendingSupplies += 1
            flow.counters.wanOut += UInt64(channel.send(.need(flow: flow.id, chunk: chunk)))
        }
        // The peer may have at most a window of bytes undelivered here.
        guard flow.toLocal.count + output.count <= window else {
            flowError(flow.id, on: channel, "peer sent more than the \(window)-byte window")
            return
        }
        flow.toLocal.append(output)
        deliver(flow)
    }
}

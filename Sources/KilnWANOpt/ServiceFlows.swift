import Glibc

extension WANOptService {
    // MARK: Optimized flows

    func serviceFlow(_ flow: OptimizedFlow, readable: Bool, writable: Bool) {
        guard flows[flow.id] === flow else { return }
        if flow.connecting {
            guard writable else { return }
            let error = TCP.pendingError(flow.fd)
            guard error == 0 else {
                log("flow \(flow.id) \(flow.client) -> \(flow.destination): connect: \(String(cString: strerror(error)))")
                abortFlow(flow, notifyPeer: true, "connect to \(flow.destination): \(String(cString: strerror(error)))")
                return
            }
            flow.connecting = false
            _ = TCP.setOption(flow.fd, Int32(IPPROTO_TCP), TCP_NODELAY)
            deliver(flow)
            return
        }
        if writable { deliver(flow) }
        guard readable, flows[flow.id] === flow, !flow.localDone, flow.credit > 0, let channel = activeChannel else { return }
        let limit = min(flow.credit, buffer.count)
        let n = buffer.withUnsafeMutableBytes { readSome(flow.fd, into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<limit])) }
        guard let n else { return }
        if n < 0 {
            abortFlow(flow, notifyPeer: true, "local connection: \(String(cString: strerror(Int32(-n))))")
            return
        }
        if n == 0 {
            flush(flow, bytes: nil, end: true, on: channel)
            flow.localDone = true
            flow.counters.wanOut += UInt64(channel.send(.close(flow: flow.id)))
            finishIfDone(flow)
        } else {
            flow.credit -= n
            flow.counters.lanIn += UInt64(n)
            buffer.withUnsafeBytes { flush(flow, bytes: UnsafeRawBufferPointer(rebasing: $0[0..<n]), on: channel) }
        }
        writeChannel(channel)
    }

    /// Feeds bytes to the encoder (nil: flush what it holds; `end`: the stream is over) and sends the payloads.
    private func flush(_ flow: OptimizedFlow, bytes: UnsafeRawBufferPointer?, end: Bool = false, on channel: PeerChannel) {
        var payloads: [[UInt8]] = []
        if end {
            flow.encoder.finish(into: &payloads)
            flow.unflushedSince = 0
        } else if let bytes {
            flow.encoder.encode(bytes, flush: false, into: &payloads)
            if flow.unflushedSince == 0 { flow.unflushedSince = MonotonicTime.now() }
        } else {
            flow.encoder.encode(UnsafeRawBufferPointer(start: nil, count: 0), flush: true, into: &payloads)
            flow.unflushedSince = 0
        }
        for payload in payloads { flow.counters.wanOut += UInt64(channel.send(.data(flow: flow.id, payload: payload))) }
    }

    /// Nothing more arrived for a moment: the encoder lets go of what it held back.
    func flushEncoder(_ flow: OptimizedFlow) {
        guard let channel = activeChannel else { return }
        flush(flow, bytes: nil, on: channel)
        writeChannel(channel)
    }

    /// Writes decoded bytes to the local socket, grants the peer credit for them, and passes on a close.
    func deliver(_ flow: OptimizedFlow) {
        guard !flow.connecting, flows[flow.id] === flow else { return }
        if !flow.toLocal.isEmpty {
            let n = flow.toLocal.write(to: flow.fd)
            if n < 0 {
                abortFlow(flow, notifyPeer: true, "local connection: \(String(cString: strerror(Int32(-n))))")
                return
            }
            flow.counters.lanOut += UInt64(n)
            flow.ungranted += n
        }
        // Grant in batches (a quarter window, or everything once the queue is empty) to keep frames few.
        if let channel = activeChannel, flow.ungranted > 0, flow.ungranted >= window / 4 || flow.toLocal.isEmpty {
            flow.counters.wanOut += UInt64(channel.send(.window(flow: flow.id, increment: UInt32(flow.ungranted))))
            flow.ungranted = 0
            writeChannel(channel)
        }
        if flow.peerDone, flow.toLocal.isEmpty, flow.pendingSupplies == 0, !flow.shutWrite {
            shutdown(flow.fd, Int32(SHUT_WR))
            flow.shutWrite = true
        }
        finishIfDone(flow)
    }

    func finishIfDone(_ flow: OptimizedFlow) {
        guard flow.finished(window: window), flows[flow.id] === flow else { return }
        flows[flow.id] = nil
        remember(closed: flow.id)
        close(flow.fd)
        retire(flow)
        let c = flow.counters
        log("flow \(flow.id) \(flow.client) -> \(flow.destination) done: lan \(c.lanIn) in \(c.lanOut) out, "
            + "wan \(c.wanOut) out \(c.wanIn) in, reduction \(Int((c.reduction * 100).rounded()))%")
    }

    /// Ends a flow abnormally: its local connection is reset, the peer told unless it told us.
    func abortFlow(_ flow: OptimizedFlow, notifyPeer: Bool, _ reason: String?) {
        guard flows[flow.id] === flow else { return }
        flows[flow.id] = nil
        remember(closed: flow.id)
        closeWithReset(flow.fd)
        retire(flow)
        if notifyPeer, let channel = activeChannel {
            channel.send(.reset(flow: flow.id, reason: reason ?? "reset"))
            writeChannel(channel)
        }
    }

    /// Adds a finished flow's counters to the side's totals.
    private func retire(_ flow: OptimizedFlow) {
        totals += flow.counters
        if let stats = flow.encoder as? any ChunkStatistics {
            closedChunks += stats.chunks
            closedChunkHits += stats.chunkHits
        }
    }

    // MARK: Direct (fail-open) flows

    func serviceDirect(_ d: DirectFlow, clientSide: Bool, readable: Bool, writable: Bool) {
        guard directs.contains(where: { $0 === d }), !d.finished else { return }
        if d.connecting {
            guard !clientSide, writable else { return }
            let error = TCP.pendingError(d.server)
            guard error == 0 else {
                log("direct -> \(d.destination): connect: \(String(cString: strerror(error)))")
                failDirect(d)
                return
            }
            d.connecting = false
            _ = TCP.setOption(d.server, Int32(IPPROTO_TCP), TCP_NODELAY)
            return
        }
        let from = clientSide ? d.client : d.server
        let to = clientSide ? d.server : d.client
        if writable {
            let n = clientSide ? d.toClient.write(to: d.client) : d.toServer.write(to: d.server)
            if n < 0 { failDirect(d); return }
            if clientSide { d.counters.lanOut += UInt64(n) } else { d.counters.wanOut += UInt64(n) }
        }
        if readable, !(clientSide ? d.clientDone : d.serverDone) {
            let n = buffer.withUnsafeMutableBytes { readSome(from, into: $0) }
            if let n {
                if n < 0 { failDirect(d); return }
                if n == 0 {
                    if clientSide { d.clientDone = true } else { d.serverDone = true }
                } else {
                    let bytes = buffer[0..<n]
                    if clientSide { d.toServer.append(bytes); d.counters.lanIn += UInt64(n) }
                    else { d.toClient.append(bytes); d.counters.wanIn += UInt64(n) }
                    let w = clientSide ? d.toServer.write(to: to) : d.toClient.write(to: to)
                    if w < 0 { failDirect(d); return }
                    if clientSide { d.counters.wanOut += UInt64(w) } else { d.counters.lanOut += UInt64(w) }
                }
            }
        }
        // Pass a half-close on once everything before it is through.
        if d.clientDone, d.toServer.isEmpty, !d.serverShut { shutdown(d.server, Int32(SHUT_WR)); d.serverShut = true }
        if d.serverDone, d.toClient.isEmpty, !d.clientShut { shutdown(d.client, Int32(SHUT_WR)); d.clientShut = true }
    }

    private func failDirect(_ d: DirectFlow) {
        closeWithReset(d.client)
        closeWithReset(d.server)
        directTotals += d.counters
        directs.removeAll { $0 === d }
    }
}

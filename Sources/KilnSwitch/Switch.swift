import CKilnShims
import Glibc
import KilnConfig
import KilnSystem

/// A running switch: its ports' kernel resources, the forwarding core and the loop that moves frames.
///
/// One thread runs `run()`: a poll loop over every port that drains whole RX blocks, queues each frame on its
/// egress ports' batches and sends every batch before handing the block back, so frames are never copied
/// (tag push and pop are iovecs). One loop and no shared state on the hot path; `withCore` takes the same lock
/// the loop holds per block, for inspection from other threads.
public final class Switch {
    let ports: [PortIO]
    private var core: SwitchCore
    private var flows: FlowTable?
    private let exporter: FlowExporter?
    private let exportInterval: UInt64
    private let wake: (read: FileDescriptor, write: FileDescriptor)
    private let lock: UnsafeMutablePointer<pthread_mutex_t>
    private var dirty: UInt64 = 0
    private var loop: JoinableThread?
    /// Why the loop thread started by `start()` ended, if it failed.
    public private(set) var failure: (any Error)?

    /// Opens every port of `spec` in the calling thread's network namespace (TAP ports are created).
    public init(spec: SwitchSpec) throws {
        let (modes, mirrors) = try spec.compile()
        var opened: [PortIO] = []
        for port in spec.ports {
            opened.append(port.type == .tap ? try PortIO(tap: port.name) : try PortIO(ring: port.name))
        }
        ports = opened
        core = SwitchCore(modes: modes, mirrors: mirrors, macLimit: spec.mac?.limit ?? 8192,
                          macPortLimit: spec.mac?.perPort ?? 4096, agingSeconds: UInt64(max(1, spec.mac?.aging ?? 300)))
        if let export = spec.export, let collector = Collector(export.collector) {
            exporter = try FlowExporter(collector: collector, domain: export.domain ?? 1)
            flows = FlowTable(capacity: export.maxFlows ?? 65536)
            exportInterval = UInt64(max(1, export.interval ?? 10)) * 1_000_000_000
        } else {
            exporter = nil
            flows = nil
            exportInterval = 0
        }
        wake = try FileDescriptor.pipe()
        lock = .allocate(capacity: 1)
        pthread_mutex_init(lock, nil)
    }

    deinit {
        pthread_mutex_destroy(lock)
        lock.deallocate()
    }

    /// The port names in port-number order.
    public var portNames: [String] { ports.map(\.name) }

    /// How each port transmits, in port-number order: "AF_XDP", "PACKET_TX_RING" (each with the sendmmsg batch for
    /// offloaded and oversized frames) or "TAP".
    public var transmitPaths: [String] { ports.map { $0.transmitRing?.description ?? "TAP" } }

    /// Runs `body` on the forwarding core under the loop's lock (counters, MAC table).
    public func withCore<T>(_ body: (inout SwitchCore) throws -> T) rethrows -> T {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        return try body(&core)
    }

    /// Per-port counters, indexed like `portNames`.
    public var counters: [PortCounters] { withCore { $0.counters } }

    /// Frames each ring port's kernel ring had no room for since the last call (PACKET_STATISTICS; TAP ports 0).
    public func ringDrops() -> [UInt64] {
        ports.map { port in
            guard port.kind == .ring else { return 0 }
            var packets: UInt32 = 0
            var drops: UInt32 = 0
            return kiln_packet_stats(port.fd.rawValue, &packets, &drops) == 0 ? UInt64(drops) : 0
        }
    }

    /// Runs the forwarding loop on a thread of its own until `stop()`.
    public func start() throws(Errno) {
        guard loop == nil else { return }
        // The loop thread owns the switch until `stop()` joins it; nothing else touches it meanwhile.
        nonisolated(unsafe) let sw = self
        loop = try JoinableThread("start the switch thread") {
            do { try sw.run() } catch { sw.failure = error }
        }
    }

    /// Asks the loop to return (it sees the request within one poll) and, when `start()` ran it, waits for it.
    public func stop() {
        requestStop()
        loop?.join()
        loop = nil
    }

    /// Asks `run()` to return without waiting; async-signal-safe.
    public func requestStop() {
        var byte: UInt8 = 1
        _ = Glibc.write(wake.write.rawValue, &byte, 1)
    }

    /// Exports the flows counted so far now, instead of at the next interval.
    public func exportNow() throws(Errno) {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        try exportFlows()
    }

    /// Moves frames until `stop()` (or a readable `extraFD`, e.g. a signalfd). Blocks the calling thread.
    public func run(extraFD: Int32 = -1) throws {
        var fds = ports.map { pollfd(fd: $0.fd.rawValue, events: Int16(POLLIN), revents: 0) }
        fds.append(pollfd(fd: wake.read.rawValue, events: Int16(POLLIN), revents: 0))
        if extraFD >= 0 { fds.append(pollfd(fd: extraFD, events: Int16(POLLIN), revents: 0)) }
        var lastHousekeeping = MonotonicClock.nanoseconds()
        var lastExport = lastHousekeeping
        var pending = false
        while true {
            // Frames left on a transmit ring under backpressure are retried after 1 ms even when nothing arrives.
            let timeout: Int32 = pending ? 1 : 100
            let ready = fds.withUnsafeMutableBufferPointer { Glibc.poll($0.baseAddress, nfds_t($0.count), timeout) }
            if ready < 0 && errno != EINTR { throw Errno(errno, operation: "poll switch ports") }
            if fds[ports.count].revents != 0 || (extraFD >= 0 && fds[ports.count + 1].revents != 0) { break }
            var busy = true
            while busy {
                busy = false
                for (index, port) in ports.enumerated() {
                    busy = (port.kind == .ring ? drainRing(index, port) : drainTap(index, port)) || busy
                }
            }
            pending = false
            for (index, port) in ports.enumerated() where port.hasPendingTransmit {
                let failed = port.flush()
                if failed > 0 { withCore { $0.countTxError(port: index, frames: failed) } }
                pending = pending || port.hasPendingTransmit
            }
            let now = MonotonicClock.nanoseconds()
            if now &- lastHousekeeping >= 1_000_000_000 {
                lastHousekeeping = now
                withCore { _ = $0.table.expire(now: now) }
            }
            if exportInterval > 0, now &- lastExport >= exportInterval {
                lastExport = now
                try exportNow()
            }
        }
        if exporter != nil { try? exportNow() }
    }

    /// Handles up to a few ready blocks of a ring port; true if it did any work.
    @inline(__always)
    private func drainRing(_ index: Int, _ port: PortIO) -> Bool {
        var worked = false
        for _ in 0..<4 {
            let block = port.block(port.currentBlock)
            guard kiln_block_ready(block) != 0 else { break }
            worked = true
            let count = Int(kiln_block_count(block))
            var offset = Int(kiln_block_first(block))
            let now = MonotonicClock.nanoseconds()
            let wall = flows == nil ? 0 : Self.wallMilliseconds()
            pthread_mutex_lock(lock)
            for _ in 0..<count {
                let frame = kiln_block_frame(block + offset)
                if frame.outgoing == 0, let data = frame.data, let vnet = frame.vnet {
                    if frame.truncated != 0 {
                        core.countRunt(port: index)
                    } else {
                        // The ring is ours until the block is released. A partial checksum of a single frame is
                        // finished in place, so the bytes are right on every egress (mirror copies included), and
                        // its header says so; a GSO segment keeps it partial: the egress computes it per segment.
                        if frame.csum_partial != 0, vnet[1] == 0 /* gso_type none */,
                           PartialChecksum.complete(UnsafeMutableRawPointer(mutating: data), length: Int(frame.length),
                                                    strippedTCI: frame.vlan_valid != 0) {
                            vnet[0] &= ~1  // VIRTIO_NET_HDR_F_NEEDS_CSUM
                        }
                        handle(index, UnsafeRawPointer(data), Int(frame.length),
                               strippedTCI: frame.vlan_valid != 0 ? frame.tci : nil, vnet: UnsafeRawPointer(vnet),
                               now: now, wall: wall)
                    }
                }
                offset += Int(frame.next)
            }
            flushDirty()
            pthread_mutex_unlock(lock)
            kiln_block_release(block)
            port.currentBlock = (port.currentBlock + 1) % port.blockCount
        }
        return worked
    }

    /// Reads what the TAP has queued (up to its fixed buffers) and forwards it; true if it did any work.
    @inline(__always)
    private func drainTap(_ index: Int, _ port: PortIO) -> Bool {
        var got = 0
        let now = MonotonicClock.nanoseconds()
        let wall = flows == nil ? 0 : Self.wallMilliseconds()
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        while got < PortIO.tapFrames {
            let buffer = port.memory + got * PortIO.tapFrameSize
            let n = Glibc.read(port.fd.rawValue, buffer, PortIO.tapFrameSize)
            if n <= 0 { break }
            got += 1
            // Each frame read from the TAP starts with its virtio-net header.
            guard n > Int(KILN_VNET_HDR_LEN) else { core.countRunt(port: index); continue }
            handle(index, UnsafeRawPointer(buffer + Int(KILN_VNET_HDR_LEN)), n - Int(KILN_VNET_HDR_LEN), strippedTCI: nil,
                   vnet: UnsafeRawPointer(buffer), now: now, wall: wall)
        }
        flushDirty()
        return got > 0
    }

    @inline(__always)
    private func handle(_ port: Int, _ data: UnsafeRawPointer, _ length: Int, strippedTCI: UInt16?, vnet: UnsafeRawPointer?,
                        now: UInt64, wall: UInt64) {
        guard let header = FrameHeader(data, length: length, strippedTCI: strippedTCI) else {
            core.countRunt(port: port)
            return
        }
        let decision = core.forward(port: port, header: header, length: length, now: now)
        if decision.ports == 0 && decision.mirrors == 0 { return }
        if flows != nil, decision.ports != 0,
           let key = FlowKey.parse(data, length: length, header: header, vlan: decision.vlan, port: port) {
            let wire = Segmentation.wireCount(data, length: length, header: header, vnet: vnet)
            flows?.account(key, packets: wire.packets, bytes: wire.bytes, nowMilliseconds: wall)
        }
        let tci = (header.tci ?? 0) & 0xf000 | decision.vlan
        var rest = decision.ports
        while rest != 0 {
            let p = rest.trailingZeroBitCount
            rest &= rest - 1
            let action = core.tagAction(port: p, vlan: decision.vlan, tagInBuffer: header.tagInBuffer,
                                        bufferVID: header.vid ?? 0)
            let failed = ports[p].enqueue(data, length: length, action: action, tci: tci, vnet: vnet)
            if failed > 0 { core.countTxError(port: p, frames: failed) }
            dirty |= 1 << UInt64(p)
        }
        rest = decision.mirrors
        while rest != 0 {
            let p = rest.trailingZeroBitCount
            rest &= rest - 1
            // A copy as it was on the wire: put back a tag the kernel stripped into metadata.
            let action: TagAction = strippedTCI != nil ? .push : .asIs
            let failed = ports[p].enqueue(data, length: length, action: action, tci: strippedTCI ?? 0, vnet: vnet)
            if failed > 0 { core.countTxError(port: p, frames: failed) }
            core.countMirror(port: p, length: length)
            dirty |= 1 << UInt64(p)
        }
    }

    @inline(__always)
    private func flushDirty() {
        while dirty != 0 {
            let p = dirty.trailingZeroBitCount
            dirty &= dirty - 1
            let failed = ports[p].flush()
            if failed > 0 { core.countTxError(port: p, frames: failed) }
        }
    }

    /// Sends the flow table's deltas to the collector; the caller holds the lock.
    private func exportFlows() throws(Errno) {
        guard let exporter, flows != nil else { return }
        var records: [FlowRecord] = []
        flows?.drain { records.append($0) }
        guard !records.isEmpty else { return }
        try exporter.send(records, exportTime: UInt32(truncatingIfNeeded: Self.wallMilliseconds() / 1000))
    }

    static func wallMilliseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UInt64(ts.tv_sec) &* 1000 &+ UInt64(ts.tv_nsec) / 1_000_000
    }
}

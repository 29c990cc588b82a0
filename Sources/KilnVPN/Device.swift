import CKilnShims
import Glibc
import KilnConfig
import KilnSystem
import Synchronization

/// A running VPN interface: a TUN device, a UDP socket and the threads that move packets between them through
/// the protocol engine. Create it inside the network namespace it should live in; its threads may run anywhere
/// afterwards, since the kernel binds the descriptors at creation.
public final class VPNDevice: @unchecked Sendable {
    public let config: VPNConfig
    public let interfaceName: String
    private let tun: TunDevice
    private let udp: FileDescriptor
    private let engine: ProtocolEngine
    private var lock = pthread_mutex_t()
    private let running = Atomic<Bool>(false)
    private var threads: [JoinableThread] = []
    /// Handshake messages seen in the current second, to decide when to answer with cookies.
    private var handshakeWindowStart: UInt64 = 0
    private var handshakesInWindow = 0
    /// Above this many handshake messages a second, mac2 (a cookie) is required.
    public var underLoadThreshold = 256
    /// Packets that found no session, per peer, sent once its handshake completes (as wireguard-go and the
    /// kernel do), so the first packets of a flow are not lost to the handshake. Only this slow path copies.
    private var staged: [Int: [[UInt8]]] = [:]
    /// When each peer's oldest staged packet was queued; dropped after `stagedLifetime` (the handshake gave up).
    private var stagedSince: [Int: UInt64] = [:]
    private static let stagedLifetime: UInt64 = 90_000_000_000
    private let stagedCount = Atomic<Int>(0)
    /// Staged packets kept per peer; older ones are dropped first.
    public static let maxStagedPerPeer = 128

    /// Opens the TUN device and binds the UDP port (dual-stack) from `config`; `start()` begins forwarding.
    public init(config: VPNConfig) throws {
        self.config = config
        let privateKey = try Base64.key(config.privateKey, field: "privateKey")
        engine = ProtocolEngine(privateKey: privateKey, wallClock: {
            var ts = timespec()
            clock_gettime(CLOCK_REALTIME, &ts)
            return (UInt64(ts.tv_sec), UInt32(ts.tv_nsec))
        })
        let constants = TimerConstants()
        for (i, peer) in config.peers.enumerated() {
            let key = try Base64.key(peer.publicKey, field: "peers[\(i)].publicKey")
            let psk = try peer.presharedKey.map { (text) throws(VPNConfigError) in try Base64.key(text, field: "peers[\(i)].presharedKey") }
            var endpoint: Endpoint?
            if let text = peer.endpoint {
                do { endpoint = try Endpoint(parsing: text) } catch {
                    throw VPNConfigError(field: "peers[\(i)].endpoint", message: error.message)
                }
            }
            let timers = PeerTimers(constants: constants, persistentKeepalive: UInt64(max(peer.persistentKeepalive ?? 0, 0)) * 1_000_000_000)
            engine.addPeer(publicKey: key, presharedKey: psk, endpoint: endpoint,
                           allowedIPs: peer.allowedIPs.map { ($0.address.bytes, $0.prefixLength) }, timers: timers)
        }
        tun = try TunDevice.open(name: config.interface ?? "kiln-vpn0", tap: false)
        interfaceName = tun.name
        let fd = try systemCall("socket", "udp") { socket(AF_INET6, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
        udp = FileDescriptor(adopting: fd)
        var off: Int32 = 0
        try systemCall("setsockopt IPV6_V6ONLY") { setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &off, 4) }
        var size: Int32 = 4 << 20
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, 4)
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, 4)
        var address = sockaddr_in6()
        address.sin6_family = sa_family_t(AF_INET6)
        address.sin6_port = config.listenPort.bigEndian
        let bound = withUnsafeMutablePointer(to: &address) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
        }
        if bound != 0 { throw Errno(errno, operation: "bind", subject: "udp port \(config.listenPort)") }
        pthread_mutex_init(&lock, nil)
    }

    deinit {
        stop()
        pthread_mutex_destroy(&lock)
    }

    /// Starts the receive, send and timer threads.
    public func start() throws {
        guard !running.exchange(true, ordering: .sequentiallyConsistent) else { return }
        for body in [udpLoop, tunLoop, timerLoop] as [@Sendable () -> Void] {
            threads.append(try JoinableThread("start VPN thread", body))
        }
    }

    /// Stops the threads (they notice within 200 ms) and waits for them.
    public func stop() {
        guard running.exchange(false, ordering: .sequentiallyConsistent) else { return }
        for t in threads { t.join() }
        threads = []
    }

    /// Dropped datagrams by reason.
    public func drops() -> [DropReason: UInt64] {
        withLock {
            var result: [DropReason: UInt64] = [:]
            for reason in DropReason.allCases where engine.drops[reason.rawValue] > 0 { result[reason] = engine.drops[reason.rawValue] }
            return result
        }
    }

    /// Completed handshakes per peer.
    public func handshakeCounts() -> [UInt64] { withLock { engine.peers.map(\.handshakes) } }

    /// Completed handshakes per peer, each with the wall-clock second the latest one completed (0: none yet).
    public func handshakes() -> [(count: UInt64, latest: UInt64)] {
        withLock { engine.peers.map { ($0.handshakes, $0.lastHandshakeSeconds) } }
    }

    /// A `wg show`-like summary.
    public func status() -> String {
        withLock {
            var text = "interface: \(interfaceName)\n  public key: \(Base64.encode(engine.publicKey))\n  private key: (hidden)\n"
            text += "  listening port: \(config.listenPort)\n"
            var ts = timespec()
            clock_gettime(CLOCK_REALTIME, &ts)
            for (i, peer) in engine.peers.enumerated() {
                text += "\npeer: \(Base64.encode(peer.publicKey))\n"
                if config.peers[i].presharedKey != nil { text += "  preshared key: (hidden)\n" }
                if let endpoint = peer.endpoint { text += "  endpoint: \(endpoint)\n" }
                text += "  allowed ips: \(config.peers[i].allowedIPs.map(\.description).joined(separator: ", "))\n"
                if peer.lastHandshakeSeconds > 0 {
                    text += "  latest handshake: \(UInt64(ts.tv_sec) &- peer.lastHandshakeSeconds) seconds ago\n"
                }
                text += "  transfer: \(peer.receivedBytes) B received, \(peer.sentBytes) B sent\n"
                if let k = config.peers[i].persistentKeepalive, k > 0 { text += "  persistent keepalive: every \(k) seconds\n" }
            }
            let dropped = DropReason.allCases.filter { engine.drops[$0.rawValue] > 0 }
            if !dropped.isEmpty {
                text += "\ndropped: " + dropped.map { "\($0): \(engine.drops[$0.rawValue])" }.joined(separator: ", ") + "\n"
            }
            return text
        }
    }

    @inline(__always)
    private func withLock<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        return body()
    }

    // MARK: Threads

    private static func now() -> UInt64 { MonotonicClock.nanoseconds() }

    /// Waits up to 200 ms for `fd` to be readable; false when it is not (or the device is stopping).
    private func wait(_ fd: Int32) -> Bool {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&p, 1, 200) > 0 && running.load(ordering: .relaxed)
    }

    /// Handshake messages waiting in the engine's outbox, with their destinations (called with the lock held).
    private func drainOutbox(into pending: inout [(Endpoint, [UInt8])]) {
        for (peer, message) in engine.outbox {
            if let endpoint = engine.peers[peer].endpoint { pending.append((endpoint, message)) }
        }
        engine.outbox.removeAll(keepingCapacity: true)
    }

    /// `endpoint` as the dual-stack socket's address (IPv4 as v4-mapped IPv6).
    @inline(__always)
    private static func fill(_ address: UnsafeMutablePointer<sockaddr_in6>, with endpoint: Endpoint) {
        address.pointee = sockaddr_in6()
        address.pointee.sin6_family = sa_family_t(AF_INET6)
        address.pointee.sin6_port = endpoint.port.bigEndian
        withUnsafeMutableBytes(of: &address.pointee.sin6_addr) { a in
            if endpoint.isIPv6 {
                a.storeBytes(of: endpoint.high, toByteOffset: 0, as: UInt64.self)
                a.storeBytes(of: endpoint.low, toByteOffset: 8, as: UInt64.self)
            } else {
                a.storeBytes(of: 0, toByteOffset: 0, as: UInt64.self)
                a.storeBytes(of: UInt32(0x0000_FFFF).bigEndian, toByteOffset: 8, as: UInt32.self)
                a.storeBytes(of: UInt32(truncatingIfNeeded: endpoint.high), toByteOffset: 12, as: UInt32.self)
            }
        }
    }

    @inline(__always)
    private func sendUDP(_ bytes: UnsafeRawPointer, _ length: Int, to endpoint: Endpoint) {
        var address = sockaddr_in6()
        VPNDevice.fill(&address, with: endpoint)
        _ = withUnsafePointer(to: &address) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(udp.rawValue, bytes, length, Int32(MSG_DONTWAIT), $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
        }
    }

    private func sendPending(_ pending: inout [(Endpoint, [UInt8])]) {
        for (endpoint, message) in pending { message.withUnsafeBytes { sendUDP($0.baseAddress!, $0.count, to: endpoint) } }
        pending.removeAll(keepingCapacity: true)
    }

    private static func endpoint(_ a: sockaddr_in6) -> Endpoint {
        var e = Endpoint(address: [0, 0, 0, 0], port: UInt16(bigEndian: a.sin6_port))
        withUnsafeBytes(of: a.sin6_addr) { b in
            let high = b.load(fromByteOffset: 0, as: UInt64.self), low = b.load(fromByteOffset: 8, as: UInt64.self)
            if high == 0 && b.load(fromByteOffset: 8, as: UInt32.self) == UInt32(0x0000_FFFF).bigEndian {
                e.high = UInt64(b.load(fromByteOffset: 12, as: UInt32.self))
                e.low = 0
                e.isIPv6 = false
            } else {
                e.high = high
                e.low = low
                e.isIPv6 = true
            }
        }
        return e
    }

    /// Bytes per batch slot: the largest datagram, or a TUN packet with its transport header, padding and tag.
    private static let slotSize: UInt32 = 65536 + 64

    /// UDP → TUN: receives datagrams a batch at a time (recvmmsg), decrypts each in place and writes the packet;
    /// answers handshakes.
    private func udpLoop() {
        guard let batch = kiln_udpbatch_new(VPNDevice.slotSize) else { return }
        defer { kiln_udpbatch_free(batch) }
        var pending: [(Endpoint, [UInt8])] = []
        pending.reserveCapacity(8)
        let fd = udp.rawValue
        while running.load(ordering: .relaxed) {
            guard wait(fd) else { continue }
            // Drain what is queued (up to 8 batches) before polling again.
            for _ in 0..<8 {
                let count = Int(kiln_udpbatch_recv(fd, batch))
                if count <= 0 { break }
                for i in 0..<count {
                    let buffer = UnsafeMutableRawBufferPointer(start: kiln_udpbatch_slot(batch, Int32(i)), count: Int(VPNDevice.slotSize))
                    let n = Int(kiln_udpbatch_length(batch, Int32(i)))
                    let from = VPNDevice.endpoint(kiln_udpbatch_address(batch, Int32(i)).load(as: sockaddr_in6.self))
                    receive(buffer, length: n, from: from, pending: &pending)
                }
                if count < Int(KILN_UDP_BATCH) { break }
            }
        }
    }

    /// One received datagram: through the engine, then to the TUN device, or answered.
    @inline(__always)
    private func receive(_ buffer: UnsafeMutableRawBufferPointer, length n: Int, from: Endpoint, pending: inout [(Endpoint, [UInt8])]) {
        let now = VPNDevice.now()
        var underLoad = false
        if n > 0 && (buffer[0] == 1 || buffer[0] == 2) {
            if now &- handshakeWindowStart > 1_000_000_000 { handshakeWindowStart = now; handshakesInWindow = 0 }
            handshakesInWindow += 1
            underLoad = handshakesInWindow > underLoadThreshold
        }
        let type = n > 0 ? buffer[0] : 0
        var flush = false
        let result = withLock {
            let r = engine.receive(buffer, length: n, from: from, now: now, underLoad: underLoad)
            if !engine.outbox.isEmpty { drainOutbox(into: &pending) }
            // A handshake response (we initiated) or the first transport message (we responded) makes
            // a session usable: send what waited for it.
            if stagedCount.load(ordering: .relaxed) > 0 {
                switch r {
                case .packet(let peer, _), .keepalive(let peer): flush = staged[peer] != nil
                default: flush = type == 2
                }
            }
            return r
        }
        switch result {
        case .packet(_, let length): _ = Glibc.write(tun.fd.rawValue, buffer.baseAddress! + 16, length)
        case .reply(let message): message.withUnsafeBytes { sendUDP($0.baseAddress!, $0.count, to: from) }
        case .keepalive, .dropped: break
        }
        if !pending.isEmpty { sendPending(&pending) }
        if flush { flushStaged(now: now) }
    }

    /// Keeps a copy of a packet that found no session (called with the lock held).
    private func stage(_ packet: UnsafeRawBufferPointer, peer: Int) {
        var queue = staged[peer] ?? []
        if queue.count >= VPNDevice.maxStagedPerPeer { queue.removeFirst() } else { stagedCount.add(1, ordering: .relaxed) }
        queue.append(Array(packet))
        if staged[peer] == nil { stagedSince[peer] = MonotonicClock.nanoseconds() }
        staged[peer] = queue
    }

    /// Seals and sends the staged packets of every peer that now has a session.
    private func flushStaged(now: UInt64) {
        var out: [(Endpoint, [UInt8])] = []
        var pending: [(Endpoint, [UInt8])] = []
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536 + 64, alignment: 16)
        defer { scratch.deallocate() }
        withLock {
            for (peer, queue) in staged {
                var sent = 0
                for packet in queue {
                    packet.withUnsafeBytes { scratch.baseAddress!.advanced(by: 16).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
                    let r = engine.send(scratch, length: packet.count, now: now)
                    if case .noSession = r { break }
                    if case .send(_, let length, let endpoint) = r { out.append((endpoint, Array(scratch[0..<length]))) }
                    sent += 1
                }
                if sent == 0 { continue }
                stagedCount.subtract(sent, ordering: .relaxed)
                staged[peer] = sent == queue.count ? nil : Array(queue.dropFirst(sent))
                if staged[peer] == nil { stagedSince[peer] = nil }
            }
            if !engine.outbox.isEmpty { drainOutbox(into: &pending) }
        }
        sendPending(&out)
        sendPending(&pending)
    }

    /// TUN → UDP: encrypts packets for the peer that owns their destination, each in place in a batch slot, and
    /// sends a batch at a time (sendmmsg) once the TUN device has no more or the batch is full.
    private func tunLoop() {
        guard let batch = kiln_udpbatch_new(VPNDevice.slotSize) else { return }
        defer { kiln_udpbatch_free(batch) }
        var pending: [(Endpoint, [UInt8])] = []
        pending.reserveCapacity(8)
        let fd = tun.fd.rawValue
        let readLimit = Int(VPNDevice.slotSize) - 64
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        while running.load(ordering: .relaxed) {
            guard wait(fd) else { continue }
            for _ in 0..<8 {
                var slots = 0
                while slots < Int(KILN_UDP_BATCH) {
                    let slot = Int32(slots)
                    let buffer = UnsafeMutableRawBufferPointer(start: kiln_udpbatch_slot(batch, slot), count: Int(VPNDevice.slotSize))
                    let n = Glibc.read(fd, buffer.baseAddress! + 16, readLimit)
                    if n <= 0 { break }
                    let now = VPNDevice.now()
                    let result = withLock {
                        let r = engine.send(buffer, length: n, now: now)
                        if case .noSession(let peer) = r { stage(UnsafeRawBufferPointer(rebasing: buffer[16..<(16 + n)]), peer: peer) }
                        if !engine.outbox.isEmpty { drainOutbox(into: &pending) }
                        return r
                    }
                    if case .send(_, let length, let endpoint) = result {
                        VPNDevice.fill(kiln_udpbatch_address(batch, slot).assumingMemoryBound(to: sockaddr_in6.self), with: endpoint)
                        kiln_udpbatch_set_length(batch, slot, UInt32(length))
                    } else {
                        kiln_udpbatch_set_length(batch, slot, 0)
                    }
                    slots += 1
                    // A handshake initiation goes out ahead of the batch.
                    if !pending.isEmpty { sendPending(&pending) }
                }
                if slots > 0 { _ = kiln_udpbatch_send(udp.rawValue, batch, Int32(slots)) }
                if slots < Int(KILN_UDP_BATCH) { break }
            }
        }
    }

    /// Timers: handshake retries, keepalives, key expiry; also starts handshakes to peers with endpoints.
    private func timerLoop() {
        var pending: [(Endpoint, [UInt8])] = []
        while running.load(ordering: .relaxed) {
            let now = VPNDevice.now()
            withLock {
                engine.tick(now: now)
                drainOutbox(into: &pending)
            }
            sendPending(&pending)
            if stagedCount.load(ordering: .relaxed) > 0 {
                withLock {
                    for (peer, since) in stagedSince where now &- since > VPNDevice.stagedLifetime {
                        stagedCount.subtract(staged[peer]?.count ?? 0, ordering: .relaxed)
                        staged[peer] = nil
                        stagedSince[peer] = nil
                    }
                }
            }
            var ts = timespec(tv_sec: 0, tv_nsec: 100_000_000)
            nanosleep(&ts, nil)
        }
    }
}

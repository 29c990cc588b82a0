import Glibc
import KilnConfig

nonisolated(unsafe) private var stopSignal: sig_atomic_t = 0

/// The DHCP service: one engine and socket per configured interface, served from one thread with poll(2)
/// until told to stop. Leases are written (atomically) at most once a second while they change, and on exit.
public final class DHCPServer {
    public let config: DHCPServerConfig
    private var engines: [DHCPServerEngine] = []
    private var sockets: [DHCPSocket] = []
    private let log: (String) -> Void
    private var lastSave: [Int64] = []
    private var writer: DHCPLeaseWriter?
    private let clock: () -> Int64
    /// Lines caused by a packet (every engine decision, malformed packets, failed sends) pass through it;
    /// start-up, lease-file and stop lines do not.
    private let packetLog: PacketLog

    /// Sets up engines and sockets (binding port 67) and loads each interface's lease file. `clock` gives the
    /// wall-clock second (tests pass a fixed one); per-packet lines are limited to `perPacketLinesPerSecond`.
    public init(config: DHCPServerConfig, perPacketLinesPerSecond: Int = 20, clock: (() -> Int64)? = nil,
                log: @escaping (String) -> Void) throws {
        let clock = clock ?? wallClockSeconds
        self.config = config; self.log = log; self.clock = clock
        let packetLog = PacketLog(limiter: LogRateLimiter(perSecond: perPacketLinesPerSecond), clock: clock, log: log)
        self.packetLog = packetLog
        for ifc in config.interfaces {
            var engine = try DHCPServerEngine(config: ifc) { packetLog.write("\(ifc.name): \($0)") }
            let dir = ifc.leaseFile.split(separator: "/").dropLast().joined(separator: "/")
            if !dir.isEmpty { makeDirectories((ifc.leaseFile.hasPrefix("/") ? "/" : "") + dir) }
            engine.replaceTable(DHCPLeaseStore.load(path: ifc.leaseFile, into: engine.table) { log("\(ifc.name): \($0)") })
            sockets.append(try DHCPSocket(interface: ifc.name, serverAddress: engine.serverAddress))
            engines.append(engine)
            lastSave.append(0)
            log("\(ifc.name): serving \(ifc.spec.pool) from \(engine.serverAddress)/\(engine.subnet.prefixLength)")
        }
    }

    /// Serves until `shouldStop` returns true (checked at least every 200 ms), then saves the leases.
    public func serve(until shouldStop: () -> Bool) {
        var fds = sockets.map { pollfd(fd: $0.udp, events: Int16(POLLIN), revents: 0) }
        var buffer = [UInt8](repeating: 0, count: 1500)
        var lastTick: Int64 = 0
        writer = DHCPLeaseWriter(log: log)
        while !shouldStop() {
            let ready = poll(&fds, nfds_t(fds.count), 200)
            let now = clock()
            if ready > 0 {
                for i in fds.indices where fds[i].revents & Int16(POLLIN) != 0 {
                    // Drain what is queued, bounded so one busy interface cannot starve the others.
                    var budget = 64
                    while budget > 0, let n = sockets[i].receive(into: &buffer) {
                        budget -= 1
                        handle(Array(buffer[0..<n]), interface: i, now: now)
                    }
                }
            }
            if now != lastTick {
                lastTick = now
                packetLog.flush(now: now)
                for i in engines.indices { engines[i].tick(now: now) }
            }
            for i in engines.indices where engines[i].leasesChanged && now - lastSave[i] >= 1 { save(i, now: now) }
        }
        for i in engines.indices where engines[i].leasesChanged { save(i, now: clock()) }
        packetLog.flush(now: clock(), final: true)
        writer?.finish()
        writer = nil
    }

    private func handle(_ bytes: [UInt8], interface i: Int, now: Int64) {
        let request: DHCPPacket
        do { request = try DHCPCodec.parse(bytes) } catch {
            packetLog.write("\(config.interfaces[i].name): dropped malformed packet (\(bytes.count) bytes): \(error)")
            return
        }
        guard let reply = engines[i].handle(request, now: now) else { return }
        if let e = sockets[i].send(DHCPCodec.serialize(reply.packet), to: reply.destination) {
            packetLog.write("\(config.interfaces[i].name): send \(reply.packet.messageType.map(\.description) ?? "reply") failed: \(String(cString: strerror(e)))")
        }
    }

    /// Hands a snapshot of the table (copy-on-write, so O(1) here) to the writer thread.
    private func save(_ i: Int, now: Int64) {
        let ifc = config.interfaces[i]
        writer?.submit(engines[i].table, interface: ifc.name, path: ifc.leaseFile)
        engines[i].markPersisted()
        lastSave[i] = now
    }

    /// The entry point of `kiln-init service dhcp /etc/kiln/dhcp.json`: loads the config, serves until SIGTERM
    /// or SIGINT, and returns the process exit status (0 on a clean stop, 1 on a config or socket error).
    /// `ready` is called once the sockets are bound and the server is about to serve.
    public static func run(configPath: String = DHCPServerConfig.defaultPath, ready: () -> Void = {}) -> Int32 {
        let log: (String) -> Void = { line in
            let bytes = Array("dhcp: \(line)\n".utf8)
            _ = bytes.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
        }
        let config: DHCPServerConfig
        do { config = try DHCPServerConfig.load(path: configPath) } catch {
            log("cannot load \(configPath): \(error)")
            return 1
        }
        stopSignal = 0
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in stopSignal = 1 }
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0   // no SA_RESTART: poll returns EINTR and the loop sees the flag at once
        sigaction(SIGTERM, &action, nil)
        sigaction(SIGINT, &action, nil)
        do {
            let server = try DHCPServer(config: config, log: log)
            ready()
            server.serve { stopSignal != 0 }
            log("stopped")
            return 0
        } catch {
            log("cannot start: \(error)")
            return 1
        }
    }
}

/// The server's per-packet log: one limiter shared by every interface's engine (the serving thread is the only
/// caller, so no lock).
final class PacketLog {
    private var limiter: LogRateLimiter
    private let clock: () -> Int64
    private let log: (String) -> Void

    init(limiter: LogRateLimiter, clock: @escaping () -> Int64, log: @escaping (String) -> Void) {
        self.limiter = limiter; self.clock = clock; self.log = log
    }

    func write(_ line: String) { for l in limiter.admit(line, now: clock()) { log(l) } }
    func flush(now: Int64, final: Bool = false) { for l in limiter.flush(now: now, final: final) { log(l) } }
}

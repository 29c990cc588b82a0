import Glibc
import KilnConfig

/// An encoder that counts its chunks: `chunkHits` of `chunks` were sent as references the peer already held.
public protocol ChunkStatistics {
    var chunks: UInt64 { get }
    var chunkHits: UInt64 { get }
}

/// The service's `status` answer, one JSON object (`kiln-init service wanopt --status` or the socket).
public struct WANOptStatus: Codable, Sendable, Equatable {
    public struct Side: Codable, Sendable, Equatable {
        public var lanIn: UInt64, lanOut: UInt64, wanIn: UInt64, wanOut: UInt64
        public var reduction: Double
        public var chunks: UInt64, chunkHits: UInt64
        /// Chunks sent as references over all chunks sent; nil before any chunk.
        public var storeHitRate: Double?
        public var chunksSupplied: UInt64, chunksRequested: UInt64
    }
    public struct Flow: Codable, Sendable, Equatable {
        public var id: UInt32
        public var client: String
        public var destination: String
        public var counters: Side
    }
    public var name: String
    public var codec: String
    /// "down", "connecting", "handshake" or "up".
    public var channel: String
    public var peer: String?
    public var channelUps: UInt64
    public var flowsOptimized: UInt64
    public var flowsDirect: UInt64
    public var flowErrors: UInt64
    public var activeFlows: Int
    public var activeDirect: Int
    /// Optimized flows, open and closed.
    public var optimized: Side
    /// Direct (fail-open) flows, open and closed.
    public var direct: Side
    public var flows: [Flow]
    /// The chunk store: chunks and bytes held, lookups that hit and missed, chunks evicted.
    public var store: Store?
    public struct Store: Codable, Sendable, Equatable {
        public var chunks: Int, bytes: Int, hits: Int, misses: Int, evicted: Int, corrupt: Int
    }
}

extension WANOptStatus.Side {
    init(_ c: FlowCounters, chunks: UInt64 = 0, hits: UInt64 = 0) {
        lanIn = c.lanIn; lanOut = c.lanOut; wanIn = c.wanIn; wanOut = c.wanOut
        reduction = (c.reduction * 10_000).rounded() / 10_000
        self.chunks = chunks; chunkHits = hits
        storeHitRate = chunks == 0 ? nil : (Double(hits) / Double(chunks) * 10_000).rounded() / 10_000
        chunksSupplied = c.chunksSupplied; chunksRequested = c.chunksRequested
    }
}

extension WANOptService {
    public var status: WANOptStatus {
        var all = totals
        var chunks = closedChunks, hits = closedChunkHits
        var perFlow: [WANOptStatus.Flow] = []
        for flow in flows.values.sorted(by: { $0.id < $1.id }) {
            all += flow.counters
            let stats = flow.encoder as? any ChunkStatistics
            chunks += stats?.chunks ?? 0; hits += stats?.chunkHits ?? 0
            perFlow.append(.init(id: flow.id, client: flow.client.description, destination: flow.destination.description,
                                 counters: .init(flow.counters, chunks: stats?.chunks ?? 0, hits: stats?.chunkHits ?? 0)))
        }
        var direct = directTotals
        for d in directs { direct += d.counters }
        let channelState: String
        if let c = channels.first(where: { $0.state == .authenticated }) ?? channels.first {
            switch c.state { case .authenticated: channelState = "up"; case .handshake: channelState = "handshake"; case .connecting: channelState = "connecting" }
        } else {
            channelState = "down"
        }
        return WANOptStatus(
            name: config.name, codec: codecs.name, channel: channelState, peer: (activeChannel ?? channels.first)?.remote,
            channelUps: channelUps, flowsOptimized: flowsOptimized, flowsDirect: flowsDirect, flowErrors: flowErrors,
            activeFlows: flows.count, activeDirect: directs.count,
            optimized: .init(all, chunks: chunks, hits: hits), direct: .init(direct), flows: perFlow,
            store: codecs.store.map { let s = $0.statistics
                return .init(chunks: s.chunks, bytes: s.bytes, hits: s.hits, misses: s.misses, evicted: s.evicted, corrupt: s.corrupt) })
    }

    func answerStatus() {
        while true {
            let fd = accept(statusListener, nil, nil)
            guard fd >= 0 else { return }
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            var text = (try? KilnJSON.encode(status).serialized) ?? "{}"
            text += "\n"
            var timeout = timeval(tv_sec: 1, tv_usec: 0)
            _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var bytes = Array(text.utf8)
            var offset = 0
            while offset < bytes.count {
                let n = bytes.withUnsafeMutableBytes { send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
                if n <= 0 { break }
                offset += n
            }
            close(fd)
        }
    }
}

/// The status socket: a Unix stream socket that answers each connection with one JSON line.
public enum StatusSocket {
    static func listen(path: String, log: (String) -> Void) -> Int32 {
        let dir = path.split(separator: "/").dropLast().joined(separator: "/")
        if !dir.isEmpty { _ = mkdir("/" + dir, 0o755) }
        unlink(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return -1 }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            log("status socket path \(path) is too long"); close(fd); return -1
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in for (i, b) in bytes.enumerated() { raw[i] = b } }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, Glibc.listen(fd, 16) == 0 else {
            log("status socket \(path): \(String(cString: strerror(errno)))"); close(fd); return -1
        }
        return fd
    }

    /// Connects to a running service's status socket and returns its answer.
    public static func query(path: String) throws(WANOptError) -> String {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw WANOptError("socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { throw WANOptError("status socket path \(path) is too long") }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in for (i, b) in bytes.enumerated() { raw[i] = b } }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else { throw WANOptError("is the wanopt service running? \(path): \(String(cString: strerror(errno)))") }
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            out += buffer[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }
}

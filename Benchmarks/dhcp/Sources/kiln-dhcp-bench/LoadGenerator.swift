import Glibc
import KilnConfig
import KilnDHCP

struct BenchError: Error, CustomStringConvertible { var description: String }

func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// Many DHCP clients over one UDP socket (port 68, SO_BINDTODEVICE, broadcast flag set): each does
/// DISCOVER → OFFER → REQUEST → ACK, with at most `window` transactions in flight and a 1 s retransmit.
struct LoadGenerator {
    struct Client {
        var xid: UInt32
        var mac: [UInt8]
        var phase = 0            // 0 idle, 1 discovering, 2 requesting, 3 bound, 4 failed
        var started: UInt64 = 0
        var requestSent: UInt64 = 0
        var lastSend: UInt64 = 0
        var tries = 0
        var offered = IPv4Address(0)
        var server = IPv4Address(0)
    }
    struct Result {
        var granted = 0, failed = 0, retransmits = 0, naks = 0
        var seconds = 0.0
        var dora: [UInt64] = []        // DISCOVER sent → ACK received
        var requestAck: [UInt64] = []  // REQUEST sent → ACK received
        var distinctAddresses = 0

        func percentile(_ v: [UInt64], _ p: Double) -> Double {
            guard !v.isEmpty else { return 0 }
            let s = v.sorted()
            return Double(s[min(s.count - 1, Int(Double(s.count - 1) * p + 0.5))]) / 1e6
        }
        func json(label: String) -> String {
            func f(_ x: Double) -> String { let r = (x * 1000).rounded() / 1000; return "\(r)" }
            var parts: [String] = []
            parts.append("\"server\":\"\(label)\"")
            parts.append("\"granted\":\(granted)")
            parts.append("\"failed\":\(failed)")
            parts.append("\"naks\":\(naks)")
            parts.append("\"retransmits\":\(retransmits)")
            parts.append("\"seconds\":\(f(seconds))")
            parts.append("\"grants_per_s\":\(f(Double(granted) / max(seconds, 1e-9)))")
            parts.append("\"dora_p50_ms\":\(f(percentile(dora, 0.5)))")
            parts.append("\"dora_p99_ms\":\(f(percentile(dora, 0.99)))")
            parts.append("\"request_ack_p50_ms\":\(f(percentile(requestAck, 0.5)))")
            parts.append("\"request_ack_p99_ms\":\(f(percentile(requestAck, 0.99)))")
            parts.append("\"distinct_addresses\":\(distinctAddresses)")
            return "{" + parts.joined(separator: ",") + "}"
        }
    }

    let fd: Int32
    var clients: [Client]
    let window: Int
    let deadline: UInt64
    private var byXid: [UInt32: Int] = [:]

    init(interface: String, clients count: Int, window: Int, deadlineSeconds: Double) throws {
        let s = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard s >= 0 else { throw BenchError(description: "socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, 4)
        setsockopt(s, SOL_SOCKET, SO_BROADCAST, &one, 4)
        var big: Int32 = 4 << 20
        setsockopt(s, SOL_SOCKET, SO_RCVBUF, &big, 4)
        var dev = Array(interface.utf8) + [0]
        guard setsockopt(s, SOL_SOCKET, SO_BINDTODEVICE, &dev, socklen_t(dev.count)) == 0 else {
            throw BenchError(description: "SO_BINDTODEVICE \(interface): \(String(cString: strerror(errno)))")
        }
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_port = UInt16(68).bigEndian
        let r = withUnsafePointer(to: &sin) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard r == 0 else { throw BenchError(description: "bind :68: \(String(cString: strerror(errno)))") }
        fd = s
        let base = UInt32(truncatingIfNeeded: monotonicNanoseconds()) & 0xfff0_0000
        self.clients = (0..<count).map { i in
            let hi = UInt8(truncatingIfNeeded: i >> 16), mid = UInt8(truncatingIfNeeded: i >> 8), lo = UInt8(truncatingIfNeeded: i)
            let mac: [UInt8] = [0x02, 0x6b, 0x69, hi, mid, lo]
            return Client(xid: base | UInt32(i), mac: mac)
        }
        for (i, c) in clients.enumerated() { byXid[c.xid] = i }
        self.window = window
        deadline = monotonicNanoseconds() + UInt64(deadlineSeconds * 1e9)
    }

    private func packet(_ c: Client, _ type: DHCPMessageType) -> [UInt8] {
        var p = DHCPPacket()
        p.xid = c.xid
        p.flags = DHCPPacket.broadcastFlag
        p.chaddr = c.mac + [UInt8](repeating: 0, count: 10)
        p.messageType = type
        p.parameterRequestList = [1, 3, 6, 15, 28, 51, 54]
        if type == .request { p.requestedAddress = c.offered; p.serverIdentifier = c.server }
        return DHCPCodec.serialize(p)
    }

    private func send(_ bytes: [UInt8]) {
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_port = UInt16(67).bigEndian
        sin.sin_addr.s_addr = UInt32(0xffff_ffff)
        _ = bytes.withUnsafeBytes { b in
            withUnsafePointer(to: &sin) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                sendto(fd, b.baseAddress, b.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            } }
        }
    }

    mutating func run() -> Result {
        var result = Result()
        var next = 0, inFlight = 0, done = 0
        var buffer = [UInt8](repeating: 0, count: 2048)
        let start = monotonicNanoseconds()
        var addresses = Set<UInt32>()
        while done < clients.count {
            let now = monotonicNanoseconds()
            if now > deadline { break }
            while inFlight < window, next < clients.count {
                clients[next].phase = 1; clients[next].started = now; clients[next].lastSend = now; clients[next].tries = 1
                send(packet(clients[next], .discover))
                next += 1; inFlight += 1
            }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            _ = poll(&pfd, 1, 5)
            while true {
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n <= 0 { break }
                guard let reply = try? DHCPCodec.parse(Array(buffer[0..<n])), reply.op == DHCPPacket.bootReply,
                      let i = byXid[reply.xid], Array(reply.chaddr[0..<6]) == clients[i].mac else { continue }
                let t = monotonicNanoseconds()
                switch (clients[i].phase, reply.messageType) {
                case (1, .offer?):
                    clients[i].offered = reply.yiaddr
                    clients[i].server = reply.serverIdentifier ?? IPv4Address(0)
                    clients[i].phase = 2; clients[i].requestSent = t; clients[i].lastSend = t; clients[i].tries = 1
                    send(packet(clients[i], .request))
                case (2, .ack?):
                    clients[i].phase = 3
                    result.dora.append(t - clients[i].started)
                    result.requestAck.append(t - clients[i].requestSent)
                    addresses.insert(reply.yiaddr.value)
                    result.granted += 1; done += 1; inFlight -= 1
                case (2, .nak?):
                    result.naks += 1
                    clients[i].phase = 1; clients[i].lastSend = t; clients[i].tries += 1
                    send(packet(clients[i], .discover))
                default: break
                }
            }
            // Retransmit after 1 s; give up after 4 tries.
            let t = monotonicNanoseconds()
            for i in 0..<next where (clients[i].phase == 1 || clients[i].phase == 2) && t - clients[i].lastSend > 1_000_000_000 {
                if clients[i].tries >= 4 { clients[i].phase = 4; result.failed += 1; done += 1; inFlight -= 1; continue }
                clients[i].tries += 1; clients[i].lastSend = t; result.retransmits += 1
                send(packet(clients[i], clients[i].phase == 1 ? .discover : .request))
            }
        }
        result.seconds = Double(monotonicNanoseconds() - start) / 1e9
        result.failed += clients.count - done
        result.distinctAddresses = addresses.count
        return result
    }
}

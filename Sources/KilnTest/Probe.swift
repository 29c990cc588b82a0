import CKilnShims
import Foundation
import KilnConfig

/// Connects from inside a test host's network namespace and says how it went: a real socket on a thread
/// that has entered the namespace (setns affects only the calling thread), not a parsed tool message.
public enum Probe {
    public enum Outcome: String, Sendable { case ok, refused, timeout, unreachable, error }

    public static func tcp(namespace: String, to endpoint: Endpoint, timeout: Double) -> (Outcome, String) {
        inNamespace(namespace) { connect(endpoint, type: Int32(SOCK_STREAM.rawValue), timeout: timeout) }
    }

    public static func udp(namespace: String, to endpoint: Endpoint, timeout: Double) -> (Outcome, String) {
        inNamespace(namespace) { connect(endpoint, type: Int32(SOCK_DGRAM.rawValue), timeout: timeout) }
    }

    static func inNamespace(_ namespace: String, _ body: @escaping @Sendable () -> (Outcome, String)) -> (Outcome, String) {
        let result = ResultBox()
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            defer { done.signal() }
            // The thread is discarded afterwards, so it never returns to the host's namespace.
            let rc = kiln_setns_path("/run/netns/\(namespace)", 0x4000_0000 /* CLONE_NEWNET */)
            guard rc == 0 else { result.value = (.error, "enter namespace \(namespace): \(String(cString: strerror(-rc)))"); return }
            result.value = body()
        }
        thread.start()
        done.wait()
        return result.value
    }

    static func connect(_ endpoint: Endpoint, type: Int32, timeout: Double) -> (Outcome, String) {
        let family = endpoint.address.isV4 ? AF_INET : AF_INET6
        let s = socket(family, type | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard s >= 0 else { return (.error, "socket: \(String(cString: strerror(errno)))") }
        defer { close(s) }
        var storage = sockaddr_storage()
        let length = withUnsafeMutableBytes(of: &storage) { raw -> socklen_t in
            let bytes = endpoint.address.bytes
            if endpoint.address.isV4 {
                var sin = sockaddr_in()
                sin.sin_family = sa_family_t(AF_INET)
                sin.sin_port = endpoint.port.bigEndian
                withUnsafeMutableBytes(of: &sin.sin_addr) { $0.copyBytes(from: bytes) }
                raw.storeBytes(of: sin, as: sockaddr_in.self)
                return socklen_t(MemoryLayout<sockaddr_in>.size)
            }
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = endpoint.port.bigEndian
            withUnsafeMutableBytes(of: &sin6.sin6_addr) { $0.copyBytes(from: bytes) }
            raw.storeBytes(of: sin6, as: sockaddr_in6.self)
            return socklen_t(MemoryLayout<sockaddr_in6>.size)
        }
        let rc = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(s, $0, length) } }
        if rc != 0 && errno != EINPROGRESS { return classify(errno) }
        let deadline = Date().addingTimeInterval(timeout)
        if type == Int32(SOCK_DGRAM.rawValue) {
            // UDP: send a datagram; a reply means open, an ICMP port unreachable surfaces as ECONNREFUSED.
            let probe = Array("kiln-probe\n".utf8)
            for _ in 0..<3 {
                _ = probe.withUnsafeBytes { send(s, $0.baseAddress, $0.count, 0) }
                let wait = min(1.0, deadline.timeIntervalSinceNow)
                if wait <= 0 { break }
                var p = pollfd(fd: s, events: Int16(POLLIN), revents: 0)
                if poll(&p, 1, Int32(wait * 1000)) > 0 {
                    var buf = [UInt8](repeating: 0, count: 2048)
                    let n = buf.withUnsafeMutableBytes { recv(s, $0.baseAddress, $0.count, 0) }
                    return n >= 0 ? (.ok, "reply of \(n) bytes") : classify(errno)
                }
            }
            return (.timeout, "no reply within \(timeout)s")
        }
        var p = pollfd(fd: s, events: Int16(POLLOUT), revents: 0)
        let ready = poll(&p, 1, Int32(max(0, deadline.timeIntervalSinceNow) * 1000))
        if ready == 0 { return (.timeout, "no answer within \(timeout)s") }
        var err: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len)
        return err == 0 ? (.ok, "connected") : classify(err)
    }

    static func classify(_ code: Int32) -> (Outcome, String) {
        let text = String(cString: strerror(code))
        switch code {
        case ECONNREFUSED: return (.refused, text)
        case ETIMEDOUT: return (.timeout, text)
        case EHOSTUNREACH, ENETUNREACH: return (.unreachable, text)
        default: return (.error, text)
        }
    }
}

final class ResultBox: @unchecked Sendable {
    var value: (Probe.Outcome, String) = (.error, "not run")
}

import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A one-shot QMP conversation over QEMU's unix socket: greeting, `qmp_capabilities`, one command, its reply.
/// Every read and write is bounded by the deadline (SO_RCVTIMEO/SO_SNDTIMEO).
public enum QMPClient {
    /// Runs `command` (e.g. `quit`, `query-status`, `set_link` with `["name": "wan", "up": false]`) and returns the
    /// reply's `return` value.
    @discardableResult
    public static func execute(
        _ command: String, arguments: [String: ConsoleValue] = [:], socket path: String, deadline: Deadline
    ) throws(VMError) -> ConsoleValue {
        let fd = try connect(path)
        defer { Glibc.close(fd) }
        var reader = LineReader(fd: fd, path: path)
        _ = try reader.nextObject(deadline: deadline)  // greeting {"QMP": …}
        try send(#"{"execute":"qmp_capabilities"}"#, fd: fd, path: path, deadline: deadline)
        _ = try reader.reply(deadline: deadline)
        var request: [String: ConsoleValue] = ["execute": .string(command)]
        if !arguments.isEmpty { request["arguments"] = .object(arguments) }
        try send(ConsoleValue.object(request).jsonText, fd: fd, path: path, deadline: deadline)
        return try reader.reply(deadline: deadline)
    }

    private static func connect(_ path: String) throws(VMError) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw VMError.lastErrno("socket for QMP", path) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard bytes.count < capacity else {
            Glibc.close(fd)
            throw VMError.qmp(socket: path, message: "socket path longer than \(capacity - 1) bytes")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        if result != 0 {
            let code = errno
            Glibc.close(fd)
            throw VMError.system(operation: "connect to QMP socket", subject: path, errno: code)
        }
        return fd
    }

    fileprivate static func setTimeout(_ fd: Int32, option: Int32, deadline: Deadline) {
        let remaining = max(deadline.remaining, 0.001)
        var tv = timeval(tv_sec: Int(remaining), tv_usec: Int((remaining - Double(Int(remaining))) * 1e6))
        setsockopt(fd, SOL_SOCKET, option, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    private static func send(_ text: String, fd: Int32, path: String, deadline: Deadline) throws(VMError) {
        let bytes = Array((text + "\n").utf8)
        var offset = 0
        while offset < bytes.count {
            setTimeout(fd, option: SO_SNDTIMEO, deadline: deadline)
            let sent = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent < 0 {
                if errno == EINTR { continue }
                throw VMError.lastErrno("send to QMP socket", path)
            }
            offset += sent
        }
    }
}

/// Reads newline-delimited JSON objects from a QMP socket.
private struct LineReader {
    let fd: Int32
    let path: String
    var buffer: [UInt8] = []

    init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }

    mutating func nextObject(deadline: Deadline) throws(VMError) -> [String: ConsoleValue] {
        while true {
            if let newline = buffer.firstIndex(of: 0x0A) {
                let line = Data(buffer[..<newline])
                buffer.removeFirst(newline + 1)
                if line.allSatisfy({ $0 == 0x0D || $0 == 0x20 }) { continue }
                guard let object = try? JSONSerialization.jsonObject(with: line),
                      case .object(let fields)? = ConsoleValue(foundation: object)
                else { throw VMError.qmp(socket: path, message: "not a JSON object: \(String(decoding: line, as: UTF8.self))") }
                return fields
            }
            if deadline.hasPassed { throw VMError.qmp(socket: path, message: "no reply before the deadline") }
            QMPClient.setTimeout(fd, option: SO_RCVTIMEO, deadline: deadline)
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count > 0 {
                buffer += chunk[0..<count]
            } else if count == 0 {
                throw VMError.qmp(socket: path, message: "QEMU closed the connection")
            } else if errno != EINTR && errno != EAGAIN {
                throw VMError.lastErrno("read from QMP socket", path)
            }
        }
    }

    /// The next `return` (or `error`), skipping asynchronous events.
    mutating func reply(deadline: Deadline) throws(VMError) -> ConsoleValue {
        while true {
            let object = try nextObject(deadline: deadline)
            if let value = object["return"] { return value }
            if let error = object["error"] {
                throw VMError.qmp(socket: path, message: "error reply: \(error)")
            }
        }
    }
}

import Glibc

/// Bytes waiting to be written to a non-blocking socket, consumed from the front without copying per write.
struct ByteQueue {
    private var bytes: [UInt8] = []
    private var start = 0

    var count: Int { bytes.count - start }
    var isEmpty: Bool { count == 0 }

    mutating func append(_ more: some Sequence<UInt8>) {
        if start > 0, start == bytes.count { bytes.removeAll(keepingCapacity: true); start = 0 }
        bytes.append(contentsOf: more)
    }

    /// Writes as much as the socket takes: the bytes written, or -errno (EAGAIN is returned as 0).
    mutating func write(to fd: Int32) -> Int {
        var total = 0
        while start < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + start, bytes.count - start, Int32(MSG_NOSIGNAL)) }
            if n > 0 { start += n; total += n; continue }
            if n < 0, errno == EINTR { continue }
            if n < 0, errno == EAGAIN || errno == EWOULDBLOCK { break }
            return -Int(errno)
        }
        if start == bytes.count { bytes.removeAll(keepingCapacity: true); start = 0 }
        else if start > 1 << 20 { bytes.removeSubrange(0..<start); start = 0 }
        return total
    }
}

/// Reads what is available from a non-blocking socket: the count, 0 at end of stream, nil when nothing is
/// waiting, -errno on an error.
func readSome(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) -> Int? {
    while true {
        let n = recv(fd, buffer.baseAddress, buffer.count, 0)
        if n >= 0 { return n }
        if errno == EINTR { continue }
        if errno == EAGAIN || errno == EWOULDBLOCK { return nil }
        return -Int(errno)
    }
}

/// Closes with a TCP reset rather than a FIN (SO_LINGER 0): the far end learns the flow failed.
func closeWithReset(_ fd: Int32) {
    var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
    _ = setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
    close(fd)
}

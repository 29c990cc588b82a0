import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Where a managed process reads its standard input from.
public enum ProcessInput: Sendable {
    /// /dev/null: the child sees end of file at once.
    case null
    /// The parent's own standard input.
    case inherit
    /// A file opened read-only.
    case file(String)
    /// A stream the parent writes with `ManagedProcess.write(_:)` (a socket pair, so writing to a process that
    /// has gone away fails with EPIPE instead of raising SIGPIPE).
    case pipe
}

/// Where a managed process's standard output or error goes.
public enum ProcessOutput: Sendable {
    /// /dev/null.
    case discard
    /// The parent's own descriptor.
    case inherit
    /// A file, truncated (or appended to).
    case file(String, append: Bool)
    /// Read on a thread and kept in memory; past `limit` bytes only the last `limit` are kept.
    case collect(limit: Int)
    /// Read on a thread; each chunk goes to the handler (on that thread), nothing is kept. A final empty chunk
    /// marks the end of the output.
    case stream(@Sendable ([UInt8]) -> Void)

    /// Collect up to 16 MiB.
    public static var collect: ProcessOutput { .collect(limit: 16 << 20) }
}

/// The bytes a `.collect` output has gathered: the last `limit` bytes and whether earlier ones were dropped.
final class OutputBuffer: @unchecked Sendable {
    private let lock = NSLock()
    private var bytes: [UInt8] = []
    private var dropped = false
    private let limit: Int

    init(limit: Int) { self.limit = max(limit, 1) }

    func append(_ chunk: [UInt8]) {
        if chunk.isEmpty { return }
        lock.lock()
        defer { lock.unlock() }
        bytes.append(contentsOf: chunk)
        if bytes.count > limit {
            bytes.removeFirst(bytes.count - limit)
            dropped = true
        }
    }

    var snapshot: (bytes: [UInt8], truncated: Bool) {
        lock.lock()
        defer { lock.unlock() }
        return (bytes, dropped)
    }
}

/// A thread that drains one pipe until end of file or until asked to stop, then closes the read end.
///
/// It polls with a short timeout so that `stop()` ends it even when a stray grandchild still holds the write end.
final class PipeReader: @unchecked Sendable {
    private let fd: Int32
    private let deliver: @Sendable ([UInt8]) -> Void
    private let finished = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var stopRequested = false
    private var done = false

    init(fd: Int32, name: String, deliver: @escaping @Sendable ([UInt8]) -> Void) {
        self.fd = fd
        self.deliver = deliver
        let thread = Thread { [self] in run() }
        thread.name = name
        thread.start()
    }

    private var shouldStop: Bool {
        lock.lock()
        defer { lock.unlock() }
        return stopRequested
    }

    private func run() {
        var buffer = [UInt8](repeating: 0, count: 65536)
        loop: while true {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, 100)
            if ready < 0 {
                if errno == EINTR { continue }
                break
            }
            if ready == 0 {
                if shouldStop { break }
                continue
            }
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            switch count {
            case let n where n > 0: deliver(Array(buffer[0..<n]))
            case 0: break loop
            default:
                if errno == EINTR || errno == EAGAIN { continue }
                break loop
            }
        }
        deliver([])
        Glibc.close(fd)
        lock.lock()
        done = true
        lock.unlock()
        finished.signal()
    }

    /// Waits until the reader has seen end of file (true) or the deadline passed (false).
    func waitUntilDone(deadline: Deadline) -> Bool {
        lock.lock()
        if done { lock.unlock(); return true }
        lock.unlock()
        let timeout = DispatchTime.now() + .nanoseconds(Int(min(deadline.remaining, 1e6) * 1e9))
        guard finished.wait(timeout: timeout) == .success else { return false }
        finished.signal()
        return true
    }

    /// Asks the thread to stop at its next poll timeout and waits (bounded) for it.
    func stop() {
        lock.lock()
        stopRequested = true
        lock.unlock()
        _ = waitUntilDone(deadline: .after(seconds: 2))
    }
}

/// A pipe or socket pair with both ends O_CLOEXEC.
func makePipe(socketPair: Bool, subject: String) throws(VMError) -> (read: Int32, write: Int32) {
    var fds: [Int32] = [-1, -1]
    if socketPair {
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else {
            throw VMError.lastErrno("socketpair for", subject)
        }
        return (fds[0], fds[1])
    }
    guard let pipe2 = pipe2Function else { throw VMError.system(operation: "pipe for", subject: subject, errno: ENOSYS) }
    guard pipe2(&fds, O_CLOEXEC) == 0 else { throw VMError.lastErrno("pipe for", subject) }
    return (fds[0], fds[1])
}

private typealias Pipe2 = @convention(c) (UnsafeMutablePointer<Int32>, Int32) -> Int32

/// pipe2(2) is a GNU extension Swift's Glibc module hides; it creates both ends O_CLOEXEC atomically, so no
/// concurrently spawned child inherits them.
private let pipe2Function: Pipe2? = dlsym(nil, "pipe2").map { unsafeBitCast($0, to: Pipe2.self) }

import Foundation

/// Runs helper tools (gpgv, gpg) with posix_spawn and waitpid, under a deadline. Foundation's
/// `Process.waitUntilExit` can park a thread forever when called off the main thread under load, so Kiln does not
/// use it.
package enum Subprocess {
    package struct Result {
        package var status: Int32
        package var stdout: String
        package var stderr: String
    }

    /// Runs `arguments[0]` from PATH with stdin from /dev/null, collecting stdout and stderr. A tool still running
    /// after `timeout` seconds is killed and reported as an error.
    package static func run(_ arguments: [String], timeout: Double = 120) throws -> Result {
        let out = try makePipe(arguments[0])
        let err = try makePipe(arguments[0])
        let pid: pid_t
        do {
            pid = try spawn(arguments, stdout: out.write, stderr: err.write, closeInChild: [out.read, err.read])
        } catch {
            [out.read, out.write, err.read, err.write].forEach { close($0) }
            throw error
        }
        close(out.write)
        close(err.write)
        defer {
            close(out.read)
            close(err.read)
        }
        var outData = [UInt8]()
        var errData = [UInt8]()
        let deadline = Date().addingTimeInterval(timeout)
        var status: Int32 = 0
        while true {
            var fds = [pollfd(fd: out.read, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: err.read, events: Int16(POLLIN), revents: 0)]
            _ = poll(&fds, 2, 100)
            drain(out.read, into: &outData)
            drain(err.read, into: &errData)
            let done = waitpid(pid, &status, WNOHANG)
            if done == pid { break }
            if done < 0 && errno != EINTR { break }
            if Date() > deadline {
                kill(pid, SIGKILL)
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                throw PackageError.tool(name: arguments[0], message: "still running after \(Int(timeout)) s; killed")
            }
        }
        drain(out.read, into: &outData)
        drain(err.read, into: &errData)
        return Result(status: exitCode(status), stdout: String(decoding: outData, as: UTF8.self),
                      stderr: String(decoding: errData, as: UTF8.self))
    }

    /// Starts `arguments` (looked up on PATH) with stdin from /dev/null and the given stdout/stderr descriptors.
    static func spawn(_ arguments: [String], stdout: Int32, stderr: Int32, closeInChild: [Int32] = []) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, stdout, 1)
        posix_spawn_file_actions_adddup2(&actions, stderr, 2)
        for fd in closeInChild { posix_spawn_file_actions_addclose(&actions, fd) }
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let result = posix_spawnp(&pid, arguments[0], &actions, nil, argv, environ)
        guard result == 0 else {
            throw PackageError.tool(name: arguments[0], message: "cannot run: \(String(cString: strerror(result)))")
        }
        return pid
    }

    /// waitpid's status as a shell would report it: the exit code, or 128 + the signal.
    static func exitCode(_ status: Int32) -> Int32 {
        status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }

    private static func makePipe(_ tool: String) throws -> (read: Int32, write: Int32) {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else {
            throw PackageError.tool(name: tool, message: "pipe: \(String(cString: strerror(errno)))")
        }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        _ = fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK)
        return (fds[0], fds[1])
    }

    private static func drain(_ fd: Int32, into data: inout [UInt8]) {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count > 0 {
                data.append(contentsOf: buffer[0..<count])
            } else if count < 0 && errno == EINTR {
                continue
            } else {
                return
            }
        }
    }
}

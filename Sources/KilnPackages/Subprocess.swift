import Foundation
import KilnSystem

/// Helper tools (gpgv, gpg) run under a deadline, with their failures as `PackageError`s. Started with
/// posix_spawn and reaped with waitpid (KilnSystem): Foundation's `Process.waitUntilExit` can park a thread
/// forever when called off the main thread under load.
package enum Subprocess {
    package struct Result {
        package var status: Int32
        package var stdout: String
        package var stderr: String
    }

    /// Runs `arguments[0]` from PATH with stdin from /dev/null, collecting stdout and stderr. A tool still running
    /// after `timeout` seconds is killed and reported as an error.
    package static func run(_ arguments: [String], timeout: Double = 120) throws -> Result {
        let r: ToolRun
        do {
            r = try ToolRun.run(arguments, timeout: timeout)
        } catch {
            throw PackageError.tool(name: arguments.first ?? "", message: "cannot run: \(error)")
        }
        if r.timedOut {
            throw PackageError.tool(name: arguments[0], message: "still running after \(Int(timeout)) s; killed")
        }
        return Result(status: r.exitCode, stdout: String(decoding: r.stdout, as: UTF8.self),
                      stderr: String(decoding: r.stderr, as: UTF8.self))
    }

    /// Starts `arguments` (looked up on PATH) with stdin from /dev/null and the given stdout/stderr descriptors;
    /// `closeInChild` are descriptors of the caller's the child must not keep.
    package static func spawn(_ arguments: [String], stdout: Int32, stderr: Int32, closeInChild: [Int32] = []) throws -> pid_t {
        for fd in closeInChild { _ = fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC) }
        do {
            let devNull = try FileDescriptor.open("/dev/null", .readOnly)
            return try ChildProcess.spawn(arguments, stdin: devNull.rawValue, stdout: stdout, stderr: stderr)
        } catch {
            throw PackageError.tool(name: arguments.first ?? "", message: "cannot run: \(error)")
        }
    }
}

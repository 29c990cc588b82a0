import KilnSystem
#if canImport(Glibc)
import Glibc
#endif

/// What the child's fd 0, 1 or 2 becomes.
enum ChildDescriptor {
    /// Keep the parent's descriptor of the same number.
    case inherit
    /// Duplicate this parent descriptor onto the slot (it is O_CLOEXEC in the parent).
    case duplicate(Int32)
    /// Open a path with flags and mode.
    case open(String, flags: Int32, mode: mode_t)
}

/// Starts a managed process: its own session and process group, default signal dispositions, an empty signal
/// mask, no descriptors above 2, and bound to this process (`BoundChildren`): it is killed when Kiln dies, even by
/// SIGKILL, and recorded for the next run to sweep (`RunRecord`).
enum Spawner {
    /// Starts `arguments[0]` (searched in PATH when it has no slash) and returns the child's pid.
    static func spawn(
        arguments: [String], environment: [String]?, workingDirectory: String?, stdio: [ChildDescriptor]
    ) throws(VMError) -> pid_t {
        guard let program = arguments.first, !program.isEmpty else {
            throw VMError.invalidCommand("empty argument list")
        }
        var opened: [Int32] = []
        defer { opened.forEach { _ = close($0) } }
        var descriptors: [Int32] = []
        for descriptor in stdio {
            switch descriptor {
            case .inherit:
                descriptors.append(-1)
            case .duplicate(let fd):
                descriptors.append(fd)
            case let .open(path, flags, mode):
                let fd = open(path, flags | O_CLOEXEC, mode)
                if fd < 0 { throw VMError.lastErrno("open for", path) }
                opened.append(fd)
                descriptors.append(fd)
            }
        }
        var lastError: Errno?
        // ETXTBSY: a program written just now may still be open for writing in a child another thread is
        // forking at this instant (until that child's exec). It passes within milliseconds; retry briefly.
        for attempt in 0..<6 {
            do {
                return try BoundChildren.spawn(arguments, environment: environment, descriptors: descriptors,
                                               workingDirectory: workingDirectory, newSession: true)
            } catch {
                lastError = error
                guard error.code == ETXTBSY else { break }
                usleep(useconds_t(10_000 << attempt))
            }
        }
        throw VMError.spawnFailed(program: program, errno: lastError?.code ?? EIO)
    }
}

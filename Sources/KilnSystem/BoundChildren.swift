import CKilnShims
import Glibc

/// Children that die with this process, even when it is killed with SIGKILL.
///
/// Each child gets PR_SET_PDEATHSIG (SIGKILL). The kernel sends it when the *thread* that forked the child exits,
/// not the process, so every such child is forked by one thread that is never joined and lives as long as the
/// process: a child started from a short-lived worker thread is not killed when that worker ends.
public enum BoundChildren {
    /// Starts `arguments[0]` (PATH lookup when it has no slash) with `descriptors[i]` as descriptor i (-1 keeps
    /// this process's), every other descriptor closed, default signals, and with `newSession` its own session and
    /// process group. Returns the pid.
    public static func spawn(_ arguments: [String], environment: [String]? = nil, descriptors: [Int32],
                             workingDirectory: String? = nil, newSession: Bool) throws(Errno) -> pid_t {
        guard let program = arguments.first, !program.isEmpty else { throw Errno(EINVAL, operation: "spawn", subject: "(empty argv)") }
        let result = SpawnThread.shared.run {
            let argv = CStringArray(arguments)
            let envp = environment.map(CStringArray.init)
            return argv.withPointers { argvPointer in
                func call(_ envPointer: UnsafePointer<UnsafeMutablePointer<CChar>?>) -> Int32 {
                    descriptors.withUnsafeBufferPointer { fds in
                        kiln_spawn(program, UnsafeMutablePointer(mutating: argvPointer), UnsafeMutablePointer(mutating: envPointer),
                                   fds.baseAddress, Int32(fds.count), workingDirectory, program.contains("/") ? 0 : 1,
                                   newSession ? 1 : 0, SIGKILL)
                    }
                }
                if let envp { return envp.withPointers { call($0) } }
                return call(UnsafePointer(environ))
            }
        }
        if result < 0 { throw Errno(-result, operation: "spawn", subject: program) }
        RunRecord.shared.add(result)
        return result
    }
}

/// The one thread that forks bound children; it is started on first use and never ends.
final class SpawnThread: @unchecked Sendable {
    static let shared = SpawnThread()

    private let lock = ConditionLock()
    private var job: (() -> Int32)?
    private var result: Int32?
    private let turn = ConditionLock()
    private var busy = false
    private var started = false

    private init() {
        // Deliberately never joined: the thread must outlive every child it forks.
        started = (try? JoinableThread("start the spawn thread") { [self] in
            while true {
                let work = lock.wait { job }
                let value = work()
                lock.broadcast { job = nil; result = value }
            }
        }) != nil
    }

    /// Runs `body` on the spawn thread and returns its result; callers take turns.
    func run(_ body: @escaping () -> Int32) -> Int32 {
        // Without the thread (it could not start), the caller forks: its children then die with it.
        guard started else { return body() }
        _ = turn.wait { () -> Bool? in
            if busy { return nil }
            busy = true
            return true
        }
        defer { turn.broadcast { busy = false } }
        lock.broadcast { result = nil; job = body }
        return lock.wait { result }
    }
}

import Glibc

/// A file per run listing the process groups it started, so the next run can end what a run killed with SIGKILL
/// left behind (its children's own children, which PR_SET_PDEATHSIG does not reach).
///
/// `<directory>/<pid>-<start time>.children` holds one `pid start-time` line per live child started through
/// `BoundChildren`; each child leads its own process group. A file whose run is gone (no process with that pid and
/// start time) is swept: every group it lists whose leader is gone or is still that same process is killed.
public final class RunRecord: @unchecked Sendable {
    public static let shared = RunRecord()

    private let lock = ConditionLock()
    private var path: String?
    private var children: [pid_t: UInt64] = [:]

    /// Where `kiln` keeps run records: /run/kiln/runs as root, else under XDG_RUNTIME_DIR or /tmp.
    public static func defaultDirectory() -> String {
        if getuid() == 0 { return "/run/kiln/runs" }
        if let runtime = getenv("XDG_RUNTIME_DIR").map({ String(cString: $0) }), runtime.hasPrefix("/") { return runtime + "/kiln/runs" }
        return "/tmp/kiln-\(getuid())/runs"
    }

    /// Starts recording this run's children in `directory`, after ending those of dead runs recorded there.
    /// Returns the pids of the process groups it killed.
    @discardableResult
    public func start(directory: String = RunRecord.defaultDirectory()) -> [pid_t] {
        try? FileSystem.makeDirectory(directory, mode: 0o700)
        let killed = Self.sweep(directory)
        lock.locked {
            path = directory + "/\(getpid())-\(Self.startTime(of: getpid()) ?? 0).children"
            writeLocked()
        }
        return killed
    }

    /// Stops recording and removes this run's file (its children have all been ended).
    public func finish() {
        lock.locked {
            if let path { unlink(path) }
            path = nil
            children = [:]
        }
    }

    /// SIGKILL to every recorded child's process group: for a signal handler about to exit.
    public func killAll() {
        for pid in lock.locked({ Array(children.keys) }) {
            kill(-pid, SIGKILL)
            kill(pid, SIGKILL)
        }
    }

    func add(_ pid: pid_t) {
        guard let start = Self.startTime(of: pid) else { return }
        lock.locked {
            children[pid] = start
            writeLocked()
        }
    }

    /// The child and its group have been ended: a later run must not signal that pid.
    public func remove(_ pid: pid_t) {
        lock.locked {
            guard children.removeValue(forKey: pid) != nil else { return }
            writeLocked()
        }
    }

    private func writeLocked() {
        guard let path else { return }
        let text = children.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)\n" }.joined()
        // Not fsynced: the file only matters while this boot lasts.
        try? FileSystem.writeFile(path + ".new", text, mode: 0o600)
        rename(path + ".new", path)
    }

    /// Ends the recorded children of every run in `directory` that is no longer alive and removes its file.
    static func sweep(_ directory: String) -> [pid_t] {
        var killed: [pid_t] = []
        for name in FileSystem.entries(directory) where name.hasSuffix(".children") {
            let owner = name.dropLast(".children".count).split(separator: "-")
            guard owner.count == 2, let pid = pid_t(owner[0]), let start = UInt64(owner[1]) else { continue }
            if pid == getpid() || startTime(of: pid) == start { continue }
            let file = directory + "/" + name
            let text = (try? FileSystem.readFile(file)).map { String(decoding: $0, as: UTF8.self) } ?? ""
            for line in text.split(separator: "\n") {
                let fields = line.split(separator: " ")
                guard fields.count == 2, let child = pid_t(fields[0]), child > 1, let childStart = UInt64(fields[1]) else { continue }
                switch startTime(of: child) {
                case childStart?:
                    // Still the same process: end its group and itself.
                    kill(-child, SIGKILL)
                    kill(child, SIGKILL)
                    killed.append(child)
                case nil:
                    // The leader is gone; a pid is not reused while a process group of that id has members, so
                    // any group with this id is what it left behind.
                    if kill(-child, SIGKILL) == 0 { killed.append(child) }
                default:
                    break  // the pid now belongs to an unrelated process
                }
            }
            unlink(file)
        }
        return killed
    }

    /// Field 22 of /proc/<pid>/stat (clock ticks after boot): with the pid, it names one process for good.
    static func startTime(of pid: pid_t) -> UInt64? {
        guard let bytes = try? FileSystem.readFile("/proc/\(pid)/stat") else { return nil }
        let text = String(decoding: bytes, as: UTF8.self)
        guard let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // After "(comm)": state is field 3, so start time (field 22) is at index 19.
        return fields.count > 19 ? UInt64(fields[19]) : nil
    }
}

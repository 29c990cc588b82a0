import Glibc
import KilnSystem

/// Loads kernel modules with finit_module(2). The builder put only the closure of the wanted set into the image,
/// ordered dependencies first, and listed each module's prerequisites, so no modprobe and no modules.dep lookup
/// happen at boot. With more than one CPU, modules whose prerequisites are in load in parallel, one loader per
/// CPU: under TCG most of a load is translating code that runs once, and each vCPU translates on its own host
/// thread.
enum Modules {
    struct Report {
        var loaded = 0
        var threads = 1
        /// The slowest loads, slowest first: (module file name, milliseconds).
        var slowest: [(String, Double)] = []
    }

    static func load(_ paths: [String], prerequisites: [[Int]]?, release: String) throws -> Report {
        let cpus = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        guard let prerequisites, prerequisites.count == paths.count, cpus > 1, paths.count > 1 else {
            return try sequential(paths, release: release)
        }
        let plan = ParallelLoad(paths: paths, prerequisites: prerequisites, release: release)
        var helpers: [JoinableThread] = []
        for _ in 1..<min(cpus, 4) { helpers.append(try JoinableThread("start a module loader") { plan.work() }) }
        plan.work()
        while let helper = helpers.popLast() { helper.join() }
        return try plan.report(threads: helpers.count + 1)
    }

    static func sequential(_ paths: [String], release: String) throws -> Report {
        var report = Report()
        var times: [(String, Double)] = []
        for path in paths {
            let start = MonotonicClock.nanoseconds()
            if try loadOne(path, release: release) { report.loaded += 1 }
            times.append((fileName(path), MonotonicClock.millisecondsSince(start)))
        }
        report.slowest = slowest(times)
        return report
    }

    static func loadOne(_ path: String, release: String) throws(Errno) -> Bool {
        try Kernel.loadModule(path: "/lib/modules/\(release)/\(path)")
    }

    static func fileName(_ path: String) -> String { path.split(separator: "/").last.map(String.init) ?? path }

    static func slowest(_ times: [(String, Double)]) -> [(String, Double)] {
        Array(times.sorted { $0.1 > $1.1 }.prefix(5))
    }
}

/// The shared state of one parallel load: each loader takes the first module (in list order) whose prerequisites
/// are loaded, until every module is done or one fails.
private final class ParallelLoad: @unchecked Sendable {
    enum State { case waiting, loading, done }
    let paths: [String]
    let prerequisites: [[Int]]
    let release: String
    let lock = ConditionLock()
    // Guarded by `lock`.
    var state: [State]
    var times: [(String, Double)] = []
    var loaded = 0
    var failure: Errno?

    init(paths: [String], prerequisites: [[Int]], release: String) {
        self.paths = paths; self.prerequisites = prerequisites; self.release = release
        state = Array(repeating: .waiting, count: paths.count)
    }

    func work() {
        while let index = next() {
            let start = MonotonicClock.nanoseconds()
            let result = Result { () throws(Errno) in try Modules.loadOne(paths[index], release: release) }
            let took = MonotonicClock.millisecondsSince(start)
            lock.broadcast {
                state[index] = .done
                times.append((Modules.fileName(paths[index]), took))
                switch result {
                case .success(let new): if new { loaded += 1 }
                case .failure(let error): if failure == nil { failure = error }
                }
            }
        }
    }

    /// The next module to load, marked as loading; nil when nothing is left or a load failed.
    /// Waits while every remaining module has a prerequisite still loading.
    private func next() -> Int? {
        lock.wait { () -> Int?? in
            if failure != nil { return .some(nil) }
            var remaining = false
            for index in state.indices where state[index] == .waiting {
                remaining = true
                if prerequisites[index].allSatisfy({ state[$0] == .done }) {
                    state[index] = .loading
                    return .some(index)
                }
            }
            return remaining ? nil : .some(nil)
        }
    }

    func report(threads: Int) throws(Errno) -> Modules.Report {
        let (failure, report) = lock.locked {
            (self.failure, Modules.Report(loaded: loaded, threads: threads, slowest: Modules.slowest(times)))
        }
        if let failure { throw failure }
        return report
    }
}

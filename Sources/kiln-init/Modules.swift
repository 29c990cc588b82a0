import Glibc
import KilnConfig
import KilnSystem

/// Loads kernel modules with finit_module(2) from the builder's plan (`ModulePlan`): only the closure of the
/// wanted set is in the image, ordered dependencies first, with each module's prerequisites, so no modprobe and
/// no modules.dep lookup happen at boot. One loader runs per CPU (up to 4), each taking the first module whose
/// prerequisites are loaded: under TCG most of a load is translating code that runs once, and each vCPU
/// translates on its own host thread. With several CPUs, loading starts before the configuration is decoded and
/// runs beside it; with one, it runs in the modules phase.
///
/// One image serves every platform: modules the plan marks for another platform (virtio on Xen, netfront under
/// KVM) are skipped, never loaded to fail.
enum Modules {
    struct Report {
        var platform = Platform.kvm
        var skipped = 0
        var loaded = 0
        var threads = 1
        /// From the first load to the last, in milliseconds (the phase itself only waits for what is left).
        var milliseconds = 0.0
        /// The slowest loads, slowest first: (module file name, milliseconds).
        var slowest: [(String, Double)] = []
    }

    /// Loading in progress; `finish` waits for it.
    final class Loading {
        private let load: ParallelLoad?
        private let problem: Error?
        private var threads: [JoinableThread] = []

        fileprivate init(load: ParallelLoad?, problem: Error?) { self.load = load; self.problem = problem }

        /// Reads the plan and starts the loaders; errors (no plan, a bad plan) surface in `finish`.
        static func start(plan path: String = ModulePlan.path) -> Loading {
            let plan: ModulePlan
            do {
                plan = try ModulePlan(parsing: String(decoding: try FileSystem.readFile(path), as: UTF8.self))
            } catch {
                return Loading(load: nil, problem: error)
            }
            let load = ParallelLoad(plan: plan, platform: Platform.detect())
            let loading = Loading(load: load, problem: nil)
            // With one CPU a thread would only take turns with the config decoding: `finish` loads on this thread.
            let cpus = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
            let loaders = cpus > 1 ? min(cpus, 4, plan.modules.count) : 0
            for _ in 0..<loaders {
                do { loading.threads.append(try JoinableThread("start a module loader") { load.work() }) } catch {
                    // Fewer loaders than CPUs still load everything; with none, `finish` does the work.
                    break
                }
            }
            return loading
        }

        /// Waits for every loader and reports; throws the first failed load.
        func finish() throws -> Report {
            if let problem { throw problem }
            guard let load else { return Report() }
            if threads.isEmpty { load.work() }
            while let thread = threads.popLast() { thread.join() }
            return try load.report()
        }
    }

    static func fileName(_ path: String) -> String { path.split(separator: "/").last.map(String.init) ?? path }
}

extension Platform {
    /// Xen when the kernel says it runs on Xen (`/sys/hypervisor/type`, which a kernel with CONFIG_XEN creates
    /// only in a Xen domain; `/sys/bus/xen` exists on any machine), else `kvm`: every other machine Kiln boots
    /// on has virtio devices.
    static func detect(sysfs: String = "/sys") -> Platform {
        guard let type = try? FileSystem.readText(sysfs + "/hypervisor/type") else { return .kvm }
        return type.hasPrefix("xen") ? .xen : .kvm
    }
}

/// The shared state of one load: each loader takes the first module (in plan order) whose prerequisites are
/// loaded, until every module is done or one fails.
private final class ParallelLoad: @unchecked Sendable {
    enum State { case waiting, loading, done }
    let plan: ModulePlan
    let platform: Platform
    let skipped: Int
    let started = MonotonicClock.nanoseconds()
    let lock = ConditionLock()
    // Guarded by `lock`.
    var state: [State]
    var times: [(String, Double)] = []
    var loaded = 0
    var workers = 0
    var finished: UInt64 = 0
    var failure: Errno?

    init(plan: ModulePlan, platform: Platform) {
        self.plan = plan
        self.platform = platform
        // Another platform's modules count as done: a module of this platform never waits for one of them.
        state = plan.modules.map { $0.loads(on: platform) ? .waiting : .done }
        skipped = state.filter { $0 == .done }.count
    }

    func work() {
        lock.locked { workers += 1 }
        while let index = next() {
            let start = MonotonicClock.nanoseconds()
            let result = Result { () throws(Errno) in try Kernel.loadModule(path: plan.file(index)) }
            let took = MonotonicClock.millisecondsSince(start)
            lock.broadcast {
                state[index] = .done
                times.append((Modules.fileName(plan.modules[index].path), took))
                finished = MonotonicClock.nanoseconds()
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
                if plan.modules[index].prerequisites.allSatisfy({ state[$0] == .done }) {
                    state[index] = .loading
                    return .some(index)
                }
            }
            return remaining ? nil : .some(nil)
        }
    }

    func report() throws(Errno) -> Modules.Report {
        let (failure, report) = lock.locked { () -> (Errno?, Modules.Report) in
            let slowest = Array(times.sorted { $0.1 > $1.1 }.prefix(5))
            let took = finished > started ? Double(finished - started) / 1_000_000 : 0
            return (self.failure, Modules.Report(platform: platform, skipped: skipped, loaded: loaded, threads: workers,
                                                 milliseconds: took, slowest: slowest))
        }
        if let failure { throw failure }
        return report
    }
}

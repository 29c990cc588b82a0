import Glibc
import KilnSystem

/// Loads kernel modules in dependency order with finit_module(2). The builder put only the closure of the
/// wanted set into the image and ordered it, so no modprobe and no modules.dep lookup happen at boot.
enum Modules {
    struct Report {
        var loaded = 0
        /// The slowest loads, slowest first: (module file name, milliseconds).
        var slowest: [(String, Double)] = []
    }

    static func load(_ paths: [String], release: String) throws -> Report {
        var report = Report()
        var times: [(String, Double)] = []
        for path in paths {
            let start = MonotonicClock.nanoseconds()
            if try Kernel.loadModule(path: "/lib/modules/\(release)/\(path)") { report.loaded += 1 }
            let name = path.split(separator: "/").last.map(String.init) ?? path
            times.append((name, MonotonicClock.millisecondsSince(start)))
        }
        report.slowest = Array(times.sorted { $0.1 > $1.1 }.prefix(5))
        return report
    }
}

import Glibc
import KilnSystem

/// Loads kernel modules in dependency order with finit_module(2). The builder put only the closure of the
/// wanted set into the image and ordered it, so no modprobe and no modules.dep lookup happen at boot.
enum Modules {
    static func load(_ paths: [String], release: String) throws -> Int {
        var loaded = 0
        for path in paths {
            if try Kernel.loadModule(path: "/lib/modules/\(release)/\(path)") { loaded += 1 }
        }
        return loaded
    }
}

import Glibc
import KilnConfig
import KilnDHCP
import KilnSwitch
import KilnSystem
import KilnWANOpt

/// `kiln-init service NAME ARGS…`: Kiln's own data-plane services, run under the supervisor.
enum ServiceEntry {
    /// Kiln's built-in services by name.
    static func entry(_ name: String) -> (([String]) -> Int32)? {
        switch name {
        case "dhcp": return { args in DHCPServer.run(configPath: args.first ?? DHCPServerConfig.defaultPath, ready: Readiness.notify) }
        case "switch": return { args in Switch.run(configPath: args.first ?? Switch.defaultConfigPath, ready: Readiness.notify) }
        case "wanopt": return { args in WANOptService.run(arguments: args, ready: Readiness.notify) }
        case "xen": return { args in XenHost.run(configPath: args.first ?? XenHostConfig.defaultPath, ready: Readiness.notify) }
        default: return nil
        }
    }
    static let names = ["dhcp", "switch", "wanopt", "xen"]

    static func run(_ arguments: [String]) -> Int32 {
        guard let name = arguments.first else {
            FileHandleless.stderr("usage: kiln-init service NAME [ARGS…]; services: \(names.joined(separator: ", "))\n")
            return 2
        }
        guard let entry = entry(name) else {
            FileHandleless.stderr("kiln-init: unknown service '\(name)'; services: \(names.joined(separator: ", "))\n")
            return 2
        }
        return entry(Array(arguments.dropFirst()))
    }
}

/// Writes to stderr without Foundation.
enum FileHandleless {
    static func stderr(_ text: String) {
        var bytes = Array(text.utf8)
        _ = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress, $0.count) }
    }
}

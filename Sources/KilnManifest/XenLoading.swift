import KilnConfig

/// The Xen host role, validated: the packages it adds, the hypervisor's command line, and dom0's runtime config.
public struct XenHostRole: Sendable {
    /// The hypervisor's console is the first serial port, where dom0's console (hvc0) is relayed too.
    public static let baseCmdline = "console=com1 loglvl=warning guest_loglvl=warning"
    /// dom0's drivers for running guests: event channels, grant tables, privileged hypercalls, xenfs (for
    /// xenstored) and the netback that gives each guest vif its backend.
    public static let modules = ["xen-evtchn", "xen-privcmd", "xenfs", "xen-gntdev", "xen-gntalloc", "xen-netback"]

    public var hypervisorPackage: String
    public var toolsPackage: String
    /// The hypervisor's full command line.
    public var cmdline: String
    public var config: XenHostConfig

    public var service: GuestService {
        GuestService(name: "xen", argv: ["/sbin/kiln-init", "service", "xen", XenHostConfig.defaultPath], restart: .onFailure)
    }
    /// The toolstack's programs, placed with their libraries; libgcc_s is opened at run time by glibc for
    /// `xl`'s thread cancellation.
    public var programs: [String] { XenHostConfig.programs.map(config.program) + ["/lib/x86_64-linux-gnu/libgcc_s.so.1"] }
}

enum XenLoading {
    static func load(_ section: XenSection, locator: Locator, problems: inout [ManifestError]) -> XenHostRole? {
        let before = problems.count
        func fail(_ keys: [String], _ message: String) { problems.append(locator.error(keys.map(ManifestLoader.key), message)) }
        let version = section.tools.hasPrefix("xen-utils-") ? String(section.tools.dropFirst("xen-utils-".count)) : ""
        if version.isEmpty || !version.allSatisfy({ $0.isNumber || $0 == "." }) {
            fail(["xen", "tools"], "expected Debian's Xen tools package, 'xen-utils-<version>' (e.g. xen-utils-4.17)")
        }
        if !section.hypervisor.hasPrefix("xen-hypervisor-") {
            fail(["xen", "hypervisor"], "expected Debian's hypervisor package, 'xen-hypervisor-<version>-<arch>' (e.g. xen-hypervisor-4.17-amd64)")
        }
        if let extra = section.cmdline, extra.contains(where: { $0 == "\n" || $0 == "\"" }) {
            fail(["xen", "cmdline"], "the hypervisor's command line is one line without quotes")
        }
        guard problems.count == before else { return nil }
        return XenHostRole(hypervisorPackage: section.hypervisor, toolsPackage: section.tools,
                           cmdline: ([XenHostRole.baseCmdline] + [section.cmdline].compactMap { $0 }).joined(separator: " "),
                           config: XenHostConfig(toolsDirectory: "/usr/lib/xen-\(version)/bin"))
    }
}

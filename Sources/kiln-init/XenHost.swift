import Glibc
import KilnConfig
import KilnNetlink
import KilnSystem

/// `kiln-init service xen`: dom0's toolstack on a Kiln Xen host. Mounts xenfs, starts xenstored, introduces
/// dom0 to it (`xen-init-dom0`), starts xenconsoled logging every guest console to a file, and reports ready
/// only once `xl info` answers, so the host's READY means guests can be created. It then watches both daemons:
/// xenconsoled is restarted if it ends; xenstored cannot be (the domains' state is in it), so the service
/// ends and the supervisor reports it.
enum XenHost {
    static func run(configPath: String, ready: () -> Void) -> Int32 {
        do {
            let config = try KilnJSON.decode(XenHostConfig.self, from: try FileSystem.readFile(configPath))
            try prepare(config)
            let xenstored = try start([config.program("xenstored"), "--no-fork"])
            try waitFor("xenstored's socket", seconds: 30) { access(XenHostConfig.xenstoreSocket, F_OK) == 0 }
            let dom0 = try runToEnd([config.program("xen-init-dom0")], seconds: 60, quiet: false)
            guard dom0.isSuccess else { throw PhaseFailure(phase: "xen", message: "xen-init-dom0: \(dom0)") }
            var consoled = try startConsoled(config)
            try waitFor("`xl info`", seconds: 60) {
                (try? runToEnd([config.program("xl"), "info"], seconds: 10, quiet: true))?.isSuccess ?? false
            }
            print("xen: toolstack ready (xenstored \(xenstored), xenconsoled \(consoled))")
            ready()
            while true {
                var status: Int32 = 0
                let pid = wait(&status)
                if pid == xenstored {
                    print("xen: xenstored ended (\(TerminationStatus(waitStatus: status))); the toolstack cannot continue")
                    return 1
                }
                if pid == consoled {
                    print("xen: xenconsoled ended (\(TerminationStatus(waitStatus: status))); restarting it")
                    sleep(1)
                    consoled = try startConsoled(config)
                }
                if pid < 0 && errno != EINTR { return 1 }
            }
        } catch {
            print("xen: \(error)")
            return 1
        }
    }

    /// xenfs for xenstored's view of dom0's store page, and the directories Debian's tools expect (`/var/run`
    /// is `/run` here, as on Debian).
    static func prepare(_ config: XenHostConfig) throws {
        try FileSystem.makeDirectory("/proc/xen")
        do { try Kernel.mount(source: "xenfs", target: "/proc/xen", fstype: "xenfs") } catch {
            if error.code != EBUSY { throw error }
        }
        try FileSystem.makeDirectory("/var")
        if access("/var/run", F_OK) != 0 { _ = symlink("/run", "/var/run") }
        for dir in ["/run/xenstored", "/run/xen", "/var/lib/xenstored", "/var/lib/xen", "/var/log/xen", config.consoleLogDirectory] {
            try FileSystem.makeDirectory(dir)
        }
    }

    static func startConsoled(_ config: XenHostConfig) throws -> pid_t {
        try start([config.program("xenconsoled"), "--interactive", "--log=guest", "--log-dir=" + config.consoleLogDirectory])
    }

    static func start(_ argv: [String]) throws -> pid_t {
        try ChildProcess.spawn(argv, environment: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"])
    }

    /// Runs a toolstack program to its end under a deadline, its output on the service's own (the console) unless
    /// `quiet`. Spawned directly rather than through ToolRun, whose binding of children to a host-side run record
    /// has no place in PID 1's image.
    static func runToEnd(_ argv: [String], seconds: Int, quiet: Bool) throws -> TerminationStatus {
        let devNull = quiet ? try FileDescriptor.open("/dev/null", .writeOnly) : nil
        let pid = try ChildProcess.spawn(argv, environment: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
                                         stdout: devNull?.rawValue, stderr: devNull?.rawValue, newSession: true)
        let deadline = MonotonicClock.nanoseconds() + UInt64(seconds) * 1_000_000_000
        while true {
            if let status = try ChildProcess.tryWait(pid) { return status }
            if MonotonicClock.nanoseconds() > deadline {
                try? ChildProcess.signal(-pid, SIGKILL)
                _ = try? ChildProcess.wait(pid)
                throw PhaseFailure(phase: "xen", message: "\(argv[0]) did not end within \(seconds) s")
            }
            usleep(20_000)
        }
    }

    static func waitFor(_ what: String, seconds: Int, _ done: () -> Bool) throws {
        let deadline = MonotonicClock.nanoseconds() + UInt64(seconds) * 1_000_000_000
        while !done() {
            guard MonotonicClock.nanoseconds() < deadline else { throw PhaseFailure(phase: "xen", message: "\(what) did not answer within \(seconds) s") }
            usleep(100_000)
        }
    }
}

/// libxl runs `/sbin/kiln-init online|offline|add|remove type_if=vif` as a vif's hotplug script (xl.conf's
/// `vif.default.script`), with `XENBUS_PATH` (`backend/vif/<domid>/<n>`) and `vif` (`vif<domid>.<n>`) in its
/// environment. Online: the vif joins the bridge the guest's config names and comes up, and
/// `hotplug-status` tells netback to connect. Offline: the vif is going away with its domain; nothing to undo.
enum XenHotplug {
    static let actions: Set<String> = ["online", "offline", "add", "remove"]

    static func processEnvironment(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }

    static func run(action: String, environment: (String) -> String? = processEnvironment) -> Int32 {
        guard let backend = environment("XENBUS_PATH"), let vif = environment("vif") else {
            FileHandleless.stderr("kiln-init: a vif hotplug call needs XENBUS_PATH and vif in its environment\n")
            return 2
        }
        guard action == "online" || action == "add" else { return 0 }
        do {
            let store = try XenStore(path: XenHostConfig.xenstoreSocket)
            let bridge = try store.read(backend + "/bridge")
            let netlink = try NetlinkSession()
            let link = try netlink.link(named: vif)
            try netlink.setMaster(index: link.index, master: try netlink.link(named: bridge).index)
            try netlink.setUp(index: link.index)
            try store.write(backend + "/hotplug-status", "connected")
            return 0
        } catch {
            FileHandleless.stderr("kiln-init: vif \(vif) (\(backend)): \(error)\n")
            return 1
        }
    }
}

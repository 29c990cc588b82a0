import CKilnShims
import Glibc
import KilnConfig
import KilnFirewall
import KilnSystem

/// PID 1: brings the appliance up in a fixed order, then supervises services and answers console commands.
enum Init {
    static let rcuExpedited = "/sys/kernel/rcu_expedited"

    static func boot() -> Never {
        Events.emit("init", [("uptime-ms", Events.uptimeMilliseconds().map { .double(($0 * 10).rounded() / 10) } ?? .null)])
        var sequence = BootSequence()

        _ = sequence.run("mount") {
            try mountEarly()
            // Until READY, RCU grace periods are expedited (IPIs instead of waiting for scheduler ticks): loading
            // the firewall and bringing links up wait on several, ~4 ms each. Normal grace periods resume at READY.
            try? FileSystem.writeFile(Init.rcuExpedited, "1\n")
            return []
        }

        // Modules load on their own threads from here on, while the configuration is decoded.
        let loading = Modules.Loading.start()
        var config: GuestConfig?
        _ = sequence.run("config") {
            let bytes = try FileSystem.readFile(GuestConfig.path)
            let c = try KilnJSON.decode(GuestConfig.self, from: bytes)
            guard c.version == GuestConfig.currentVersion else {
                throw PhaseFailure(phase: "config", message: "config version \(c.version), this kiln-init reads \(GuestConfig.currentVersion)")
            }
            config = c
            try? Kernel.setHostname(c.hostname)
            return [("name", .string(c.name))]
        }
        _ = sequence.run("modules") {
            let report = try loading.finish()
            // The slowest loads, so a boot-time regression names its module.
            let slowest = report.slowest.map { "\($0.0) \(Int($0.1.rounded()))ms" }.joined(separator: ", ")
            return [("count", .int(Int64(report.loaded))), ("platform", .string(report.platform.rawValue)),
                    ("skipped", .int(Int64(report.skipped))), ("threads", .int(Int64(report.threads))),
                    ("loading-ms", .double((report.milliseconds * 10).rounded() / 10)), ("slowest", .string(slowest))]
        }
        guard let config else { return idle(sequence: sequence, supervisor: Supervisor([])) }

        // The firewall goes in before any NIC is up: the whole ruleset in one kernel transaction (it names
        // interfaces by name, so they need not exist yet). If the kernel refuses it, the default-drop bootstrap
        // goes in instead; if even that fails, no NIC comes up at all.
        var closed = true
        if let firewall = config.firewall, !sequence.run("firewall", { try FirewallRuntime.apply(firewall.ruleset); return [] }) {
            let error = sequence.failures.last?.message ?? ""
            closed = sequence.run("firewall-bootstrap") { try FirewallRuntime.apply(firewall.bootstrap); return [] }
            Events.emit("firewall-failed", [("error", .string(error)), ("state", .string(closed ? "default-drop" : "links-down"))])
        }
        if closed {
            _ = sequence.run("links") { try Network.links(config) }
            _ = sequence.run("network") { try Network.configure(config) }
        }
        var tunnels: [TunDevice] = []
        _ = sequence.run("tuntap") {
            tunnels = try Network.tuntap(config)
            return [("count", .int(Int64(tunnels.count)))]
        }
        let supervisor = Supervisor(config.services)
        _ = sequence.run("services") {
            try supervisor.startAll()
            if !config.services.isEmpty {
                // Under TCG a service's first start takes a few hundred ms; 10 s is for a stuck one.
                let failed = supervisor.awaitReady(ms: 10_000)
                if !failed.isEmpty { throw PhaseFailure(phase: "services", message: failed.joined(separator: "; ")) }
            }
            return [("count", .int(Int64(config.services.count)))]
        }
        return idle(sequence: sequence, supervisor: supervisor, keep: tunnels)
    }

    static func mountEarly() throws {
        // /proc and /dev were mounted by the CKilnShims constructor before the Swift runtime started.
        if kiln_early_mounts_done() == 0 {
            try FileSystem.makeDirectory("/proc")
            try Kernel.mount(source: "proc", target: "/proc", fstype: "proc")
            try FileSystem.makeDirectory("/dev")
            try Kernel.mount(source: "devtmpfs", target: "/dev", fstype: "devtmpfs")
        }
        for (source, target, type) in [("sysfs", "/sys", "sysfs"), ("tmpfs", "/run", "tmpfs"), ("tmpfs", "/tmp", "tmpfs"),
                                       ("devpts", "/dev/pts", "devpts")] {
            try FileSystem.makeDirectory(target)
            try Kernel.mount(source: source, target: target, fstype: type)
        }
        try? FileSystem.makeDirectory("/var/lib/kiln")
        // /var/lock points here (the image's /var/run and /var/lock are links into /run, as on Debian).
        try? FileSystem.makeDirectory("/run/lock")
    }

    /// Reports the verdict, then serves the event loop forever.
    static func idle(sequence: BootSequence, supervisor: Supervisor, keep tunnels: [TunDevice] = []) -> Never {
        try? FileSystem.writeFile(Init.rcuExpedited, "0\n")
        if sequence.failures.isEmpty {
            Events.emit("ready", [("uptime-ms", Events.uptimeMilliseconds().map { .double(($0 * 10).rounded() / 10) } ?? .null)])
        } else {
            Events.emit("failed", [("phases", .array(sequence.failures.map { .string($0.phase) })),
                                   ("error", .string(sequence.failures.first?.description ?? ""))])
        }
        EventLoop(supervisor: supervisor).run()
        withExtendedLifetime(tunnels) {}
        shutdown(supervisor: supervisor, reboot: false)
    }

    static func shutdown(supervisor: Supervisor, reboot: Bool) -> Never {
        Events.emit("shutdown", [("action", .string(reboot ? "reboot" : "poweroff"))])
        supervisor.stopAll()
        Kernel.sync()
        _ = kiln_reboot(reboot ? 1 : 0)
        // reboot(2) does not return on success; if it did, there is nothing left to do but wait.
        while true { pause() }
    }
}

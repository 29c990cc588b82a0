import Foundation
import KilnConfig
import KilnVM
import Logging

/// A built appliance ready to boot: where its artifacts are and what NICs it expects.
public struct BootableImage: Sendable {
    public var directory: String
    public var kernel: String
    public var initrd: String
    public var cmdline: String
    /// NIC names and MACs in the appliance's interface (PCI) order.
    public var nics: [(name: String, mac: String?)]
    public var artifacts: [String: String]
    /// A Xen host image: the hypervisor QEMU starts, with this kernel and initramfs as dom0.
    public var hypervisor: Hypervisor?
    /// The image's bridges and their member NICs (on a Xen host, where guests' vifs go).
    public var bridges: [String: [String]]
    public init(directory: String, kernel: String, initrd: String, cmdline: String, nics: [(name: String, mac: String?)], artifacts: [String: String],
                hypervisor: Hypervisor? = nil, bridges: [String: [String]] = [:]) {
        self.directory = directory; self.kernel = kernel; self.initrd = initrd; self.cmdline = cmdline; self.nics = nics; self.artifacts = artifacts
        self.hypervisor = hypervisor; self.bridges = bridges
    }

    /// Memory a VM gets unless its topology entry says: a Xen host holds dom0 and its guests.
    public var defaultMemoryMiB: Int { hypervisor == nil ? 256 : 1536 }

    /// The command line of the image's kernel: under a hypervisor dom0's as built (the accelerator's additions
    /// are for a kernel that owns the machine).
    public func kernelCommandLine(_ accelerator: Accelerator, cpus: Int) -> String {
        hypervisor == nil ? accelerator.commandLine(cmdline, cpus: cpus) : cmdline
    }
}

/// Runs a topology: network up, VMs booted in parallel, host servers started, checks run, everything torn
/// down whatever happens — success, failure, an error, or Ctrl-C (the CLI calls `abort()` from its signal handler).
public final class TopologyRunner: @unchecked Sendable {
    public let topology: Topology
    public let path: String
    public let accelerator: Accelerator
    public let timeoutScale: TimeoutScale
    public let logger: Logger
    private let fabric = Fabric()
    private let xenGuests: XenGuests
    private var vms: [String: VirtualMachine] = [:]
    private var background: [ManagedProcess] = []
    private let lock = NSLock()

    public init(topology: Topology, path: String, accelerator: Accelerator, timeoutScale: TimeoutScale = .fromEnvironment(), logger: Logger) {
        self.topology = topology; self.path = path; self.accelerator = accelerator; self.timeoutScale = timeoutScale; self.logger = logger
        xenGuests = XenGuests(topology: topology, path: path)
    }

    /// Boots, checks, tears down. `images` maps each VM name to its built image.
    public func run(images: [String: BootableImage], bootTimeout: Double = 60) -> TestReport {
        let started = Date()
        defer { tearDown() }
        var results: [VMResult] = []
        var checks: [CheckResult] = []
        do {
            Fabric.removeStale()
            let guests = xenGuests.names
            try fabric.setUp(try xenGuests.resolvingLinks(images: images),
                             nics: images.filter { !guests.contains($0.key) }.mapValues { $0.nics.map(\.name) })
            results = bootAll(images: images, timeout: bootTimeout)
            // Xen guests go onto their Xen host once it is up, one after another (each is a boot inside a VM).
            for (name, _) in topology.vms.entries where guests.contains(name) && results.allSatisfy(\.asExpected) {
                guard let image = images[name] else { continue }
                results.append(xenGuests.deploy(name, image: image, fabric: fabric, readyTimeout: timeoutScale.scale(max(bootTimeout, 80)), logger: logger))
            }
            if results.allSatisfy(\.asExpected) {
                try startBackground()
                let runner = CheckRunner(fabric: fabric, timeoutScale: timeoutScale.factor)
                for check in topology.checks {
                    if let line = check.console, check.event != nil {
                        checks.append(consoleEventCheck(check, line: line))
                    } else if let command = check.console {
                        checks.append(consoleCheck(check, command: command))
                    } else if let event = check.event {
                        checks.append(eventCheck(check, event: event))
                    } else if let pattern = check.line {
                        checks.append(lineCheck(check, pattern: pattern))
                    } else {
                        checks.append(runner.run(check))
                    }
                    logger.info("\(checks.last?.passed == true ? "PASS" : "FAIL") \(checks.last?.name ?? "")")
                }
            }
        } catch {
            checks.append(CheckResult(name: "set up topology", passed: false, detail: "\(error)", seconds: Date().timeIntervalSince(started)))
        }
        return TestReport(topology: topology.name, vms: results, checks: checks, seconds: Date().timeIntervalSince(started))
    }

    private func bootAll(images: [String: BootableImage], timeout: Double) -> [VMResult] {
        let entries = topology.vms.entries.filter { $0.value.xen == nil }
        let results = ResultSlots(count: entries.count)
        let group = DispatchGroup()
        for (i, (name, spec)) in entries.enumerated() {
            guard let image = images[name] else {
                results.set(i, VMResult(name: name, image: "", artifacts: [:], accelerator: accelerator.rawValue, ready: false, milestones: [],
                                      failedPhase: "build", error: "no image", consoleTail: []))
                continue
            }
            let nics = image.nics.enumerated().map { j, nic in
                NIC(id: "n\(j)", mac: nic.mac ?? String(format: "52:54:00:%02x:%02x:%02x", 0x6b, i, j + 1),
                    backend: fabric.taps["\(name).\(nic.name)"].map { .tap(ifname: $0) } ?? .unconnected)
            }
            let cpus = spec.cpus ?? accelerator.defaultCPUs
            var command = QEMUCommand(kernel: image.kernel, initrd: image.initrd, append: image.kernelCommandLine(accelerator, cpus: cpus),
                                      memoryMiB: spec.memory ?? image.defaultMemoryMiB, cpus: cpus, accelerator: accelerator, nics: nics)
            command.hypervisor = image.hypervisor
            command.name = name
            command.qmpSocket = NSTemporaryDirectory() + "kiln-\(getpid())-\(name).qmp"
            let vm = VirtualMachine(name: name, command: command, networkNamespace: fabric.fabricNamespace,
                                    timeoutScale: timeoutScale, logger: logger)
            lock.withLock { vms[name] = vm }
            group.enter()
            DispatchQueue.global().async {
                let result = TopologyRunner.boot(vm, name: name, image: image, timeout: timeout, accelerator: self.accelerator.rawValue,
                                                 expectFailure: spec.expectFailure, settle: self.timeoutScale.scale(10))
                results.set(i, result)
                group.leave()
            }
        }
        group.wait()
        return results.values
    }

    /// Boots `vm` and waits for its verdict. With `expectFailure`, a failure in that phase is waited out until
    /// kiln-init's final `failed` event (at most `settle` seconds), so checks see the box as it stays.
    static func boot(_ vm: VirtualMachine, name: String, image: BootableImage, timeout: Double, accelerator: String,
                     expectFailure: String? = nil, settle: Double = 10) -> VMResult {
        func result(_ report: BootReport?, error: String?, phase: String?) -> VMResult {
            VMResult(name: name, image: image.directory, artifacts: image.artifacts, accelerator: accelerator,
                     ready: report?.isReady ?? false,
                     milestones: report?.milestones.map { .init(name: $0.name, seconds: $0.seconds) } ?? [],
                     failedPhase: phase, error: error, consoleTail: report?.consoleTail.suffix(40).map(\.text) ?? [],
                     expectedFailure: expectFailure,
                     initToReadyMilliseconds: report?.guestInitToReadyMilliseconds)
        }
        do {
            try vm.start()
            return result(try vm.waitForReady(timeout: timeout), error: nil, phase: nil)
        } catch let VMError.bootFailed(report) {
            switch report.outcome {
            case let .phaseFailed(phase, error) where phase == expectFailure:
                let deadline = Date().addingTimeInterval(settle)
                while Date() < deadline, vm.termination == nil, !(vm.console?.events.contains { $0.name == "failed" } ?? false) {
                    usleep(100_000)
                }
                return result(vm.currentReport(outcome: report.outcome), error: error, phase: phase)
            case let .phaseFailed(phase, error): return result(report, error: error, phase: phase)
            case let .kernelPanic(message): return result(report, error: message, phase: "kernel")
            case let .exited(status, stderr): return result(report, error: "QEMU exited \(status): \(stderr)", phase: "qemu")
            case let .timedOut(seconds): return result(report, error: "no READY within \(Int(seconds))s", phase: report.milestones.last?.name ?? "boot")
            case .ready: return result(report, error: nil, phase: nil)
            }
        } catch {
            return result(nil, error: "\(error)", phase: "qemu")
        }
    }

    private func eventCheck(_ check: Topology.CheckSpec, event: String) -> CheckResult {
        let seen = xenGuests.names.contains(check.on)
            ? xenGuests.consoleEvents(check.on).contains { $0.name == event }
            : lock.withLock { vms[check.on] }?.console?.events.contains { $0.name == event } ?? false
        let expectSeen = (check.expect ?? .ok) == .ok
        return CheckResult(name: CheckRunner.name(of: check), passed: seen == expectSeen,
                           detail: seen ? "event '\(event)' seen on the console" : "event '\(event)' not seen", seconds: 0)
    }

    /// Types `line` on the VM's console; with `event`, waits for a matching event that arrives after it.
    private func consoleEventCheck(_ check: Topology.CheckSpec, line: String) -> CheckResult {
        let started = Date()
        let name = check.name ?? "\(check.on): console `\(line)`" + (check.event.map { " → \($0)" } ?? "")
        guard let vm = lock.withLock({ vms[check.on] }) else {
            return CheckResult(name: name, passed: false, detail: "\(check.on) is not a VM of this topology", seconds: 0)
        }
        let deadline = started.addingTimeInterval((check.timeout ?? 20) * timeoutScale.factor)
        var last = "no event"
        repeat {
            let before = vm.console?.events.count ?? 0
            do { try vm.sendConsoleLine(line) } catch {
                return CheckResult(name: name, passed: false, detail: "\(error)", seconds: Date().timeIntervalSince(started))
            }
            guard let event = check.event else {
                return CheckResult(name: name, passed: true, detail: "typed `\(line)`", seconds: Date().timeIntervalSince(started))
            }
            let until = min(deadline, Date().addingTimeInterval(1))
            while Date() < until {
                let events = vm.console?.events ?? []
                for e in events.dropFirst(before) where e.name == event {
                    let text = e.fields.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
                    last = text
                    if check.output.map(text.contains) ?? true {
                        return CheckResult(name: name, passed: true, detail: "\(event): \(text)", seconds: Date().timeIntervalSince(started))
                    }
                }
                usleep(100_000)
            }
        } while Date() < deadline
        return CheckResult(name: name, passed: false, detail: "no '\(check.event ?? "")' event with '\(check.output ?? "")'; last: \(last)",
                           seconds: Date().timeIntervalSince(started))
    }

    /// Waits (the check's timeout, default 3 s, scaled) for a console line since boot, still in the tail, that
    /// matches `pattern`; nothing is typed.
    private func lineCheck(_ check: Topology.CheckSpec, pattern: String) -> CheckResult {
        let started = Date()
        let name = CheckRunner.name(of: check)
        let guest = xenGuests.names.contains(check.on)
        let vm = lock.withLock({ vms[check.on] })
        guard guest || vm != nil else {
            return CheckResult(name: name, passed: false, detail: "no VM '\(check.on)'", seconds: 0)
        }
        let match: ConsoleLineMatch
        do { match = try ConsoleLineMatch(pattern: pattern) } catch {
            return CheckResult(name: name, passed: false, detail: "'\(pattern)' is not a regular expression: \(error)", seconds: 0)
        }
        let deadline = started.addingTimeInterval((check.timeout ?? 3) * timeoutScale.factor)
        var found: String?
        while true {
            found = match.first(in: guest ? xenGuests.consoleLines(check.on) : (vm?.console?.tail ?? []).map(\.text))
            if found != nil || Date() >= deadline || vm?.termination != nil { break }
            usleep(guest ? 1_000_000 : 200_000)
        }
        let expectFound = (check.expect ?? .ok) == .ok
        return CheckResult(name: name, passed: (found != nil) == expectFound,
                           detail: found.map { "the console printed: \($0)" } ?? "no console line matches /\(pattern)/",
                           seconds: Date().timeIntervalSince(started))
    }

    /// Types `command` on the VM's console and waits (the check's timeout, default 3 s, scaled) for a console
    /// line after it that contains `output`.
    private func consoleCheck(_ check: Topology.CheckSpec, command: String) -> CheckResult {
        let started = Date()
        let name = CheckRunner.name(of: check)
        guard let vm = lock.withLock({ vms[check.on] }) else {
            return CheckResult(name: name, passed: false, detail: "no VM '\(check.on)'", seconds: 0)
        }
        let after = vm.console?.tail.last?.seconds ?? 0
        do { try vm.sendConsoleLine(command) } catch {
            return CheckResult(name: name, passed: false, detail: "cannot type on the console: \(error)", seconds: 0)
        }
        let deadline = Date().addingTimeInterval((check.timeout ?? 3) * timeoutScale.factor)
        var answer: [String] = []
        var found = false
        repeat {
            usleep(200_000)
            answer = (vm.console?.tail ?? []).filter { $0.seconds > after }.map(\.text)
            found = check.output.map { want in answer.contains { $0.contains(want) } } ?? !answer.isEmpty
        } while !found && Date() < deadline
        let expectFound = (check.expect ?? .ok) == .ok
        let shown = answer.suffix(12).joined(separator: "\n")
        return CheckResult(name: name, passed: found == expectFound,
                           detail: (found ? "the console printed it" : "not printed") + (shown.isEmpty ? "" : "\n" + shown),
                           seconds: Date().timeIntervalSince(started))
    }

    private func startBackground() throws {
        for (host, spec) in topology.hosts?.entries ?? [] {
            for command in spec.run ?? [] {
                // Its own session and process group, so teardown ends everything the command started.
                let p = try ManagedProcess(["sh", "-c", command], networkNamespace: fabric.namespace(ofHost: host))
                lock.withLock { background.append(p) }
            }
        }
        if !(topology.hosts?.entries.allSatisfy { ($0.value.run ?? []).isEmpty } ?? true) { usleep(300_000) }
    }

    /// Stops QEMU and background commands, then deletes every namespace. Safe to call more than once and
    /// from a signal handler's thread.
    public func tearDown() {
        let (machines, procs) = lock.withLock { () -> ([VirtualMachine], [ManagedProcess]) in
            defer { vms = [:]; background = [] }
            return (Array(vms.values), background)
        }
        for p in procs { p.close(grace: 0.5) }
        for vm in machines { vm.stop(grace: 1) }
        xenGuests.tearDown()
        fabric.tearDown()
    }
}

/// Results filled in by parallel boots.
final class ResultSlots: @unchecked Sendable {
    private var slots: [VMResult?]
    private let lock = NSLock()
    init(count: Int) { slots = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ r: VMResult) { lock.withLock { slots[i] = r } }
    var values: [VMResult] { lock.withLock { slots.compactMap { $0 } } }
}

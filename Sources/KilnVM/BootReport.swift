/// How a boot ended, as far as the host can tell. Only a READY event counts as success: QEMU exits 0 after a
/// kernel panic too.
public enum BootOutcome: Sendable, Equatable, Codable {
    /// The guest printed `KILN {"event":"ready",…}`.
    case ready
    /// kiln-init reported `phase-failed` for `phase`.
    case phaseFailed(phase: String, error: String)
    /// The kernel panicked.
    case kernelPanic(message: String)
    /// QEMU exited (or failed to start) before READY.
    case exited(status: String, stderr: String)
    /// No READY within the deadline.
    case timedOut(seconds: Double)
}

/// What a boot did: milestones (QEMU start → kernel → /init → each kiln-init phase → READY), the Kiln events,
/// and the console tail for failure reports. `Codable` for `--json` and test reports.
public struct BootReport: Sendable, Equatable, Codable {
    /// The VM's name.
    public var vm: String
    /// `kvm` or `tcg`.
    public var accelerator: String
    public var outcome: BootOutcome
    /// In order of arrival; seconds since QEMU started.
    public var milestones: [BootMilestone]
    public var events: [ConsoleEvent]
    /// The last console lines (oldest first).
    public var consoleTail: [ConsoleLine]

    public init(
        vm: String, accelerator: String, outcome: BootOutcome, milestones: [BootMilestone],
        events: [ConsoleEvent], consoleTail: [ConsoleLine]
    ) {
        self.vm = vm
        self.accelerator = accelerator
        self.outcome = outcome
        self.milestones = milestones
        self.events = events
        self.consoleTail = consoleTail
    }

    /// True when the guest reached READY.
    public var isReady: Bool { outcome == .ready }

    /// Seconds since QEMU start of a milestone (`BootMilestone.kernel`, `.ready`, `phase("links")`, …).
    public func seconds(_ milestone: String) -> Double? { milestones.first { $0.name == milestone }?.seconds }

    /// Seconds from the kernel starting /init to READY as the host saw the console lines arrive, when both were seen.
    public var initToReady: Double? {
        guard let start = seconds(BootMilestone.initStarted), let ready = seconds(BootMilestone.ready) else { return nil }
        return ready - start
    }

    /// kiln-init's own /init → READY: the `ms` of its `ready` event, from the guest's monotonic clock (the serial
    /// console and a busy host do not stretch it the way they stretch `initToReady`).
    public var guestInitToReadyMilliseconds: Double? {
        events.first { $0.name == "ready" }?.milliseconds
    }

    /// One line saying what went wrong (or that the VM is ready).
    public var failureSummary: String {
        switch outcome {
        case .ready:
            return "VM \(vm) is ready after \(formatSeconds(seconds(BootMilestone.ready) ?? 0))"
        case let .phaseFailed(phase, error):
            return "VM \(vm): phase \(phase) failed: \(error)"
        case .kernelPanic(let message):
            return "VM \(vm): kernel panic: \(message)"
        case let .exited(status, stderr):
            let detail = stderr.isEmpty ? "" : ": \(stderr)"
            return "VM \(vm): QEMU exited (\(status)) before READY\(detail)"
        case .timedOut(let seconds):
            return "VM \(vm): no READY within \(formatSeconds(seconds))"
        }
    }

    /// The timings as aligned lines, e.g. `  kernel        1.204 s`.
    public var timingLines: [String] {
        var lines = ["  qemu start    0.000 s"]
        for milestone in milestones {
            let name = milestone.name.padded(to: 13)
            lines.append("  \(name) \(threeDecimals(milestone.seconds)) s")
        }
        return lines
    }

    /// Summary, timings and console tail: what a person needs to see after a failed boot.
    public var text: String {
        var lines = [failureSummary, "timings (\(accelerator)):"] + timingLines
        if !isReady {
            lines.append("console (last \(consoleTail.count) lines):")
            lines += consoleTail.map { "  [\(threeDecimals($0.seconds))] \($0.text)" }
        }
        return lines.joined(separator: "\n")
    }
}

func threeDecimals(_ value: Double) -> String {
    let millis = Int((value * 1000).rounded())
    let sign = millis < 0 ? "-" : ""
    let magnitude = abs(millis)
    let fraction = String(magnitude % 1000)
    return "\(sign)\(magnitude / 1000).\(String(repeating: "0", count: 3 - fraction.count))\(fraction)"
}

extension String {
    func padded(to length: Int) -> String {
        count >= length ? self : self + String(repeating: " ", count: length - count)
    }
}

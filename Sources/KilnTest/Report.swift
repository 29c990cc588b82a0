import Foundation

/// What happened to one VM: how long each boot milestone took, and on failure the phase and console tail.
public struct VMResult: Codable, Sendable {
    public var name: String
    public var image: String
    /// SHA-256 of the kernel and initramfs that were booted (the deploy step checks it).
    public var artifacts: [String: String]
    public var accelerator: String
    public var ready: Bool
    /// Milestones in seconds since QEMU started: kernel, /init, each kiln-init phase, ready.
    public var milestones: [Milestone]
    public var failedPhase: String?
    public var error: String?
    public var consoleTail: [String]
    /// The phase the topology said this boot must fail in (`expect-failure`), nil when it must reach READY.
    public var expectedFailure: String?
    /// kiln-init's own figure for /init → READY: the `ms` of its `ready` event (CLOCK_MONOTONIC since it started).
    /// The milestones are when lines reached the host, which the serial console and a busy host delay.
    public var initToReadyMilliseconds: Double?

    /// READY when that was expected; otherwise failed in exactly the expected phase.
    public var asExpected: Bool {
        guard let expectedFailure else { return ready }
        return !ready && failedPhase == expectedFailure
    }

    public struct Milestone: Codable, Sendable {
        public var name: String
        public var seconds: Double
        public init(name: String, seconds: Double) { self.name = name; self.seconds = seconds }
    }

    public init(name: String, image: String, artifacts: [String: String], accelerator: String, ready: Bool,
                milestones: [Milestone], failedPhase: String?, error: String?, consoleTail: [String], expectedFailure: String? = nil,
                initToReadyMilliseconds: Double? = nil) {
        self.name = name; self.image = image; self.artifacts = artifacts; self.accelerator = accelerator; self.ready = ready
        self.milestones = milestones; self.failedPhase = failedPhase; self.error = error; self.consoleTail = consoleTail
        self.expectedFailure = expectedFailure; self.initToReadyMilliseconds = initToReadyMilliseconds
    }
}

/// The whole run: VMs, checks, verdict and timing. Rendered as text, JSON or JUnit XML.
public struct TestReport: Codable, Sendable {
    public var topology: String
    public var vms: [VMResult]
    public var checks: [CheckResult]
    public var seconds: Double
    public init(topology: String, vms: [VMResult], checks: [CheckResult], seconds: Double) {
        self.topology = topology; self.vms = vms; self.checks = checks; self.seconds = seconds
    }

    public var passed: Bool { vms.allSatisfy(\.asExpected) && checks.allSatisfy(\.passed) && !checks.isEmpty }

    public var text: String {
        var out = "topology \(topology)\n"
        for vm in vms {
            let timeline = vm.milestones.map { "\($0.name) \(String(format: "%.2f", $0.seconds))s" }.joined(separator: " → ")
            let verdict = vm.ready ? "READY" : vm.asExpected ? "FAILED as expected" : "FAILED"
            out += "  vm \(vm.name) [\(vm.accelerator)]: \(verdict) \(timeline)\n"
            if let ms = vm.initToReadyMilliseconds {
                out += "    kiln-init /init → READY \(Int(ms.rounded())) ms (guest clock)\n"
            }
            if let expected = vm.expectedFailure, vm.ready {
                out += "    expected to fail in phase \(expected), but it reached READY\n"
            }
            if !vm.ready {
                out += "    failed phase: \(vm.failedPhase ?? "boot")\(vm.error.map { ": \($0)" } ?? "")\n"
                out += "    console (last \(vm.consoleTail.count) lines):\n" + vm.consoleTail.map { "      | \($0)\n" }.joined()
            }
        }
        for c in checks {
            out += "  \(c.passed ? "PASS" : "FAIL") \(c.name) (\(String(format: "%.2f", c.seconds))s)"
            out += c.passed ? "\n" : "\n" + c.detail.split(separator: "\n").map { "      \($0)\n" }.joined()
        }
        let failed = checks.filter { !$0.passed }.count + vms.filter { !$0.asExpected }.count
        out += "\(checks.filter(\.passed).count) passed, \(failed) failed in \(String(format: "%.1f", seconds))s\n"
        return out
    }

    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    /// JUnit XML: one testsuite per topology; each VM boot and each check is a testcase.
    public var junit: String {
        func esc(_ s: String) -> String {
            s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
        }
        let failures = vms.filter { !$0.asExpected }.count + checks.filter { !$0.passed }.count
        var out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        out += "<testsuite name=\"\(esc(topology))\" tests=\"\(vms.count + checks.count)\" failures=\"\(failures)\" time=\"\(String(format: "%.3f", seconds))\">\n"
        for vm in vms {
            let t = vm.milestones.last?.seconds ?? 0
            out += "  <testcase classname=\"\(esc(topology)).boot\" name=\"\(esc(vm.name))\" time=\"\(String(format: "%.3f", t))\">"
            if !vm.asExpected {
                let message = vm.ready ? "reached READY, expected to fail in phase \(vm.expectedFailure ?? "")"
                    : (vm.failedPhase ?? "boot") + ": " + (vm.error ?? "")
                out += "\n    <failure message=\"\(esc(message))\">\(esc(vm.consoleTail.joined(separator: "\n")))</failure>\n  "
            }
            out += "</testcase>\n"
        }
        for c in checks {
            out += "  <testcase classname=\"\(esc(topology)).checks\" name=\"\(esc(c.name))\" time=\"\(String(format: "%.3f", c.seconds))\">"
            if !c.passed { out += "\n    <failure message=\"\(esc(c.detail.split(separator: "\n").first.map(String.init) ?? ""))\">\(esc(c.detail))</failure>\n  " }
            out += "</testcase>\n"
        }
        return out + "</testsuite>\n"
    }
}

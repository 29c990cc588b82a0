import Foundation
import KilnConfig

/// The outcome of one check, with what was seen so a failure explains itself.
public struct CheckResult: Sendable, Codable {
    public var name: String
    public var passed: Bool
    public var detail: String
    public var seconds: Double

    public init(name: String, passed: Bool, detail: String, seconds: Double) {
        self.name = name; self.passed = passed; self.detail = detail; self.seconds = seconds
    }
}

/// Runs host-side checks: ping, TCP/UDP connects and commands inside a test host's namespace.
public struct CheckRunner {
    public let fabric: Fabric
    public let timeoutScale: Double

    public init(fabric: Fabric, timeoutScale: Double) { self.fabric = fabric; self.timeoutScale = timeoutScale }

    public static func name(of check: Topology.CheckSpec) -> String {
        if let n = check.name { return n }
        let what: String
        if let p = check.ping { what = "ping \(p)" }
        else if let t = check.tcp { what = "tcp \(t)" }
        else if let u = check.udp { what = "udp \(u)" }
        else if let r = check.run { what = "run `\(r)`" }
        else if let l = check.line { what = "line /\(l)/" }
        else if let c = check.console { what = "console `\(c)`" + (check.output.map { " prints '\($0)'" } ?? "") }
        else { what = "event \(check.event ?? "?")" }
        return "\(check.on): \(what) → \(check.expect?.rawValue ?? "ok")"
    }

    public func run(_ check: Topology.CheckSpec) -> CheckResult {
        let started = Date()
        let expect = check.expect ?? .ok
        let ns = fabric.namespace(ofHost: check.on)
        let timeout = (check.timeout ?? 3) * timeoutScale
        var passed = false
        var detail = ""
        if let target = check.ping {
            let r = try? HostCommand.run(["ip", "netns", "exec", ns, "ping", target.isV4 ? "-4" : "-6", "-c", "2", "-i", "0.3",
                                          "-W", String(Int(max(1, timeout.rounded(.up)))), target.description], timeout: timeout + 5)
            let ok = r?.status == 0
            passed = expect == .ok ? ok : !ok
            detail = ok ? "replies received" : "no reply: " + (r?.output.split(separator: "\n").suffix(2).joined(separator: " | ") ?? "ping did not run")
        } else if let text = check.tcp ?? check.udp, let endpoint = Endpoint(text) {
            let (outcome, message) = check.tcp != nil
                ? Probe.tcp(namespace: ns, to: endpoint, timeout: timeout)
                : Probe.udp(namespace: ns, to: endpoint, timeout: timeout)
            switch expect {
            case .ok: passed = outcome == .ok
            case .refused: passed = outcome == .refused || outcome == .unreachable
            case .timeout: passed = outcome == .timeout
            case .fail: passed = outcome != .ok
            }
            detail = "\(outcome.rawValue): \(message)"
        } else if let command = check.run {
            let r = try? HostCommand.run(["ip", "netns", "exec", ns, "sh", "-c", command], timeout: timeout * 4)
            let ok = r?.status == 0 && r?.timedOut == false
            let outputOK = check.output.map { r?.output.contains($0) ?? false } ?? true
            passed = (expect == .ok ? ok : !ok) && outputOK
            let tail = r?.output.split(separator: "\n").suffix(5).joined(separator: "\n") ?? ""
            detail = "exit \(r.map { $0.timedOut ? "timeout" : String($0.status) } ?? "not run")"
                + (check.output.map { outputOK ? ", output contains '\($0)'" : ", output lacks '\($0)'" } ?? "")
                + (tail.isEmpty ? "" : "\n" + tail)
        }
        return CheckResult(name: CheckRunner.name(of: check), passed: passed, detail: detail, seconds: Date().timeIntervalSince(started))
    }
}

/// A `line:` check's regular expression, applied to console lines.
public struct ConsoleLineMatch {
    public let pattern: String
    private let regex: Regex<AnyRegexOutput>

    public init(pattern: String) throws {
        self.pattern = pattern
        regex = try Regex(pattern)
    }

    /// The first of `lines` with a match anywhere in it.
    public func first(in lines: some Sequence<String>) -> String? {
        lines.first { (try? regex.firstMatch(in: $0)) != nil }
    }
}

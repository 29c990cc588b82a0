import Foundation
import Testing
@testable import KilnVM

/// The state letter of /proc/PID/stat ("R", "S", "Z", …), nil when the pid no longer exists.
func processState(_ pid: Int32) -> String? {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = stat.lastIndex(of: ")")
    else { return nil }
    return stat[stat.index(after: close)...].split(separator: " ").first.map(String.init)
}

/// True when the pid is gone or a zombie waiting for its (new) parent: it runs no more.
func isDead(_ pid: Int32) -> Bool {
    let state = processState(pid)
    return state == nil || state == "Z" || state == "X"
}

/// The report of a boot that must fail; records an issue when it does not.
func bootFailure(_ body: () throws -> BootReport) -> BootReport? {
    do {
        _ = try body()
        Issue.record("expected the boot to fail")
    } catch VMError.bootFailed(let report) {
        return report
    } catch {
        Issue.record("unexpected error \(error)")
    }
    return nil
}


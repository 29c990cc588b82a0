import KilnConfig
import KilnSystem

/// A boot step that failed, with what it was doing.
struct PhaseFailure: Error, CustomStringConvertible {
    var phase: String
    var message: String
    var description: String { "\(phase): \(message)" }
}

/// Runs the boot phases in their fixed order, timing each and reporting it on the console.
/// A failed phase is reported and the rest of the boot continues where that is safe; the firewall stays
/// closed whatever happens after the default-drop ruleset is loaded.
struct BootSequence {
    private(set) var failures: [PhaseFailure] = []

    mutating func run(_ name: String, critical: Bool = false, _ body: () throws -> [(String, JSONValue)]) -> Bool {
        let started = MonotonicClock.nanoseconds()
        do {
            let fields = try body()
            Events.emit("phase", [("phase", .string(name)), ("took", .double(round1(MonotonicClock.millisecondsSince(started))))] + fields)
            return true
        } catch {
            let failure = PhaseFailure(phase: name, message: (error as? PhaseFailure)?.message ?? "\(error)")
            failures.append(failure)
            Events.emit("phase-failed", [("phase", .string(name)), ("error", .string(failure.message)),
                                         ("took", .double(round1(MonotonicClock.millisecondsSince(started))))])
            return false
        }
    }

    private func round1(_ v: Double) -> Double { (v * 10).rounded() / 10 }
}

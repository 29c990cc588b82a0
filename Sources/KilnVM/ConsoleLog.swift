import Foundation

/// A thread-safe console: the reader thread feeds it bytes, waiters block until a condition on the parsed
/// console holds (a milestone, an event) or a deadline passes. Lines are stamped relative to `origin`.
public final class ConsoleLog: @unchecked Sendable {
    private let condition = NSCondition()
    private var parser: ConsoleEventParser
    private var ended = false
    private let origin: Deadline
    private let observer: (@Sendable (ConsoleSignal) -> Void)?

    /// `observer` sees every signal (lines, milestones, events) on the reader thread, outside the lock.
    public init(origin: Deadline, tailLimit: Int = 200, observer: (@Sendable (ConsoleSignal) -> Void)? = nil) {
        self.origin = origin
        self.parser = ConsoleEventParser(tailLimit: tailLimit)
        self.observer = observer
    }

    /// Feeds bytes that arrived now.
    public func consume(_ bytes: [UInt8]) {
        let seconds = origin.seconds(until: .now())
        condition.lock()
        let signals = parser.feed(bytes, at: seconds)
        condition.broadcast()
        condition.unlock()
        if let observer { signals.forEach(observer) }
    }

    /// Marks the end of output (flushes a partial last line and wakes every waiter).
    public func end() {
        condition.lock()
        let signals = parser.finish(at: origin.seconds(until: .now()))
        ended = true
        condition.broadcast()
        condition.unlock()
        if let observer { signals.forEach(observer) }
    }

    /// Wakes waiters so they re-check outside conditions (e.g. the process exited).
    public func wake() {
        condition.lock()
        condition.broadcast()
        condition.unlock()
    }

    /// True once `end()` was called.
    public var hasEnded: Bool {
        condition.lock()
        defer { condition.unlock() }
        return ended
    }

    /// A copy of the parser state: milestones, events, tail.
    public var snapshot: ConsoleEventParser {
        condition.lock()
        defer { condition.unlock() }
        return parser
    }

    /// Blocks until `predicate` holds for the parsed console, or until the deadline or `maxSlice` seconds
    /// pass; returns the state that ended the wait and whether the predicate held.
    public func wait(
        deadline: Deadline, maxSlice: Double = 0.1, until predicate: (ConsoleEventParser) -> Bool
    ) -> (state: ConsoleEventParser, satisfied: Bool) {
        let sliceEnd = Deadline.earliest(deadline, .after(seconds: maxSlice))
        condition.lock()
        defer { condition.unlock() }
        while !predicate(parser) {
            let remaining = sliceEnd.remaining
            if remaining <= 0 || ended { return (parser, false) }
            _ = condition.wait(until: Date(timeIntervalSinceNow: remaining))
        }
        return (parser, true)
    }
}

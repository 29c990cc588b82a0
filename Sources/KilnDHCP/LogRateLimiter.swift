/// Per-packet log lines under a budget, so a LAN host flooding DISCOVERs cannot push everything else off the
/// console: at most `perSecond` lines in each wall-clock second; the rest are counted, and the first line of a
/// later second (or the server's once-a-second tick, or its exit) reports how many were left out. Pure: the
/// caller passes the time, so the behaviour is the same on a fast or a slow host.
public struct LogRateLimiter: Sendable {
    public let perSecond: Int
    /// Lines left out since the last notice, and since the start.
    public private(set) var suppressed = 0
    public private(set) var totalSuppressed = 0
    /// Lines let through since the start.
    public private(set) var totalLogged = 0
    private var second: Int64 = .min
    private var inSecond = 0
    private var suppressedSince: Int64 = 0

    public init(perSecond: Int = 20) { self.perSecond = perSecond }

    /// The lines to write for `line` at `now` (seconds): a notice of what was suppressed before it, the line
    /// itself, both, or nothing.
    public mutating func admit(_ line: String, now: Int64) -> [String] {
        var out = flush(now: now)
        if now != second { second = now; inSecond = 0 }
        if inSecond < perSecond {
            inSecond += 1
            totalLogged += 1
            out.append(line)
        } else {
            if suppressed == 0 { suppressedSince = now }
            suppressed += 1
            totalSuppressed += 1
        }
        return out
    }

    /// The notice of lines suppressed in earlier seconds, once `now` has moved past them (or always, `final`).
    public mutating func flush(now: Int64, final: Bool = false) -> [String] {
        guard suppressed > 0, final || now != second else { return [] }
        let span = max(1, (final ? now : second) - suppressedSince + (final ? 0 : 1))
        let notice = "\(suppressed) per-packet log line\(suppressed == 1 ? "" : "s") suppressed in \(span) s "
            + "(limit \(perSecond)/s; \(totalSuppressed) suppressed, \(totalLogged) logged since start)"
        suppressed = 0
        return [notice]
    }
}

#if canImport(Glibc)
import Glibc
#endif

/// A point on the monotonic clock (CLOCK_MONOTONIC), immune to wall-clock changes; every KilnVM wait takes one.
public struct Deadline: Sendable, Comparable, Hashable {
    /// Nanoseconds since an arbitrary, fixed origin (boot).
    public var nanoseconds: UInt64

    public init(nanoseconds: UInt64) { self.nanoseconds = nanoseconds }

    /// The current instant.
    public static func now() -> Deadline {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Deadline(nanoseconds: UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec))
    }

    /// `seconds` from now (negative or NaN counts as zero).
    public static func after(seconds: Double) -> Deadline {
        let clamped = seconds.isNaN ? 0 : min(max(seconds, 0), 1e9)
        return Deadline(nanoseconds: now().nanoseconds &+ UInt64(clamped * 1e9))
    }

    /// A deadline that never arrives.
    public static let distantFuture = Deadline(nanoseconds: UInt64.max / 2)

    /// Seconds left until the deadline, zero once it has passed.
    public var remaining: Double {
        let now = Deadline.now().nanoseconds
        return nanoseconds > now ? Double(nanoseconds - now) / 1e9 : 0
    }

    /// True once the deadline has passed.
    public var hasPassed: Bool { Deadline.now().nanoseconds >= nanoseconds }

    /// Seconds elapsed from `self` to `later` (negative if `later` is earlier).
    public func seconds(until later: Deadline) -> Double {
        later.nanoseconds >= nanoseconds
            ? Double(later.nanoseconds - nanoseconds) / 1e9
            : -Double(nanoseconds - later.nanoseconds) / 1e9
    }

    /// The earlier of two deadlines.
    public static func earliest(_ a: Deadline, _ b: Deadline) -> Deadline { a < b ? a : b }

    public static func < (lhs: Deadline, rhs: Deadline) -> Bool { lhs.nanoseconds < rhs.nanoseconds }
}

/// One multiplier for every KilnVM deadline: slow hosts (TCG) set `KILN_TIMEOUT_SCALE=3` rather than editing
/// each timeout. Values that are missing, unparsable or not positive count as 1.
public struct TimeoutScale: Sendable, Equatable {
    /// The multiplier applied to every deadline.
    public var factor: Double

    public init(_ factor: Double) { self.factor = factor.isFinite && factor > 0 ? factor : 1 }

    /// The multiplier from `KILN_TIMEOUT_SCALE` in `environment` (default: this process's environment).
    public static func fromEnvironment(_ environment: [String: String]? = nil) -> TimeoutScale {
        let raw: String?
        if let environment {
            raw = environment["KILN_TIMEOUT_SCALE"]
        } else {
            raw = getenv("KILN_TIMEOUT_SCALE").map { String(cString: $0) }
        }
        guard let raw, let value = Double(raw.trimmingWhitespace()) else { return TimeoutScale(1) }
        return TimeoutScale(value)
    }

    /// `seconds` scaled by the factor.
    public func scale(_ seconds: Double) -> Double { seconds * factor }

    /// A deadline `seconds × factor` from now.
    public func deadline(after seconds: Double) -> Deadline { .after(seconds: scale(seconds)) }
}

extension String {
    func trimmingWhitespace() -> String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
              let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })
        else { return "" }
        return String(scalars[first...last])
    }
}

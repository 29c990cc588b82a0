import Glibc

/// CLOCK_MONOTONIC readings for phase timings and deadlines.
public enum MonotonicClock {
    /// Nanoseconds since an arbitrary fixed point (boot); never goes backwards.
    public static func nanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    /// Milliseconds elapsed since a previous `nanoseconds()` reading.
    public static func millisecondsSince(_ start: UInt64) -> Double {
        Double(nanoseconds() &- start) / 1_000_000
    }
}

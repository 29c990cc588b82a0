import Foundation

/// A fixed-seed generator so a failure reproduces (SplitMix64).
public struct SplitMix: RandomNumberGenerator {
    public var state: UInt64
    public init(state: UInt64) { self.state = state }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Runs a command with a deadline; returns status and combined output.
@discardableResult
public func sh(_ argv: [String], timeout: Int = 30) throws -> (status: Int32, output: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/timeout")
    p.arguments = ["-k", "2", String(timeout)] + argv
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    try p.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// Runs a shell line (for pipes and redirections), failing the test's setup on a non-zero status.
@discardableResult
public func run(_ line: String, timeout: Int = 30) throws -> String {
    let r = try sh(["bash", "-c", line], timeout: timeout)
    guard r.status == 0 else { throw TestFailure("`\(line)` exited \(r.status): \(r.output)") }
    return r.output
}

public struct TestFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

/// Waits (at most `seconds`) until `condition` holds, checking every 100 ms; returns whether it did.
public func eventually(seconds: Double = 10, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        usleep(100_000)
    }
    return condition()
}

extension SplitMix {
    /// A generator for one test, seeded from `KILN_TEST_SEED` when set, else from `fixed`; the seed is printed so a
    /// failure can be repeated with `KILN_TEST_SEED=<seed>`.
    public static func seeded(_ test: String, fixed: UInt64) -> SplitMix {
        let seed = ProcessInfo.processInfo.environment["KILN_TEST_SEED"].flatMap { UInt64($0) } ?? fixed
        print("\(test): seed \(seed) (KILN_TEST_SEED=\(seed) repeats it)")
        return SplitMix(state: seed)
    }
}

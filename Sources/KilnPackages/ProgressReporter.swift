import Foundation

/// Receives download progress. Kiln picks a terminal bar when stderr is a terminal and stays quiet otherwise;
/// `--json` callers can pass `JSONLinesProgress`. Calls may come from several download threads.
public protocol ProgressReporter: Sendable {
    func update(completedBytes: Int64, totalBytes: Int64, completedItems: Int, totalItems: Int, current: String)
    func finish(success: Bool)
}

/// Reports nothing.
public struct SilentProgress: ProgressReporter {
    public init() {}
    public func update(completedBytes: Int64, totalBytes: Int64, completedItems: Int, totalItems: Int, current: String) {}
    public func finish(success: Bool) {}
}

/// Chooses how to report: a bar on a terminal, nothing otherwise.
public enum ProgressReporters {
    public static func automatic() -> any ProgressReporter {
        isatty(STDERR_FILENO) == 1 ? TerminalProgressBar() : SilentProgress()
    }
}

/// A one-line bar redrawn in place on stderr, at most ten times a second, erased when done.
public final class TerminalProgressBar: ProgressReporter, @unchecked Sendable {
    private let lock = NSLock()
    private var lastDraw = 0.0
    private var drawn = false
    private let width: Int

    public init(width: Int = 30) {
        self.width = width
    }

    public func update(completedBytes: Int64, totalBytes: Int64, completedItems: Int, totalItems: Int, current: String) {
        lock.lock()
        defer { lock.unlock() }
        let now = Date().timeIntervalSinceReferenceDate
        guard now - lastDraw >= 0.1 || completedItems == totalItems else { return }
        lastDraw = now
        let fraction = totalBytes > 0 ? min(1, Double(completedBytes) / Double(totalBytes)) : 0
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        let line = String(format: "\r\u{1B}[K[%@] %3d%% %d/%d %@ / %@ %@", bar, Int(fraction * 100), completedItems,
                          totalItems, Self.megabytes(completedBytes), Self.megabytes(totalBytes), String(current.prefix(40)))
        FileHandle.standardError.write(Data(line.utf8))
        drawn = true
    }

    public func finish(success: Bool) {
        lock.lock()
        defer { lock.unlock() }
        if drawn { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        drawn = false
    }

    private static func megabytes(_ bytes: Int64) -> String {
        String(format: "%.1f MB", Double(bytes) / 1_000_000)
    }
}

/// One JSON object per line (`{"event":"progress",...}`), for machines reading `--json` output.
public final class JSONLinesProgress: ProgressReporter, @unchecked Sendable {
    private let lock = NSLock()
    private let handle: FileHandle
    private var lastItems = -1

    public init(handle: FileHandle = .standardError) {
        self.handle = handle
    }

    /// Writes a line whenever an item completes (not for every chunk, to keep the stream small).
    public func update(completedBytes: Int64, totalBytes: Int64, completedItems: Int, totalItems: Int, current: String) {
        lock.lock()
        defer { lock.unlock() }
        guard completedItems != lastItems else { return }
        lastItems = completedItems
        let escaped = current.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        let line = "{\"event\":\"progress\",\"completedBytes\":\(completedBytes),\"totalBytes\":\(totalBytes),"
            + "\"completedItems\":\(completedItems),\"totalItems\":\(totalItems),\"current\":\"\(escaped)\"}\n"
        handle.write(Data(line.utf8))
    }

    public func finish(success: Bool) {
        lock.lock()
        defer { lock.unlock() }
        handle.write(Data("{\"event\":\"finished\",\"success\":\(success)}\n".utf8))
    }
}

/// Sums the bytes of parallel downloads and forwards totals to a reporter.
final class ProgressTracker: @unchecked Sendable {
    private let lock = NSLock()
    private let reporter: any ProgressReporter
    private let totalBytes: Int64
    private let totalItems: Int
    private var bytes: [Int: Int64] = [:]
    private var completed = 0

    init(reporter: any ProgressReporter, totalBytes: Int64, totalItems: Int) {
        self.reporter = reporter
        self.totalBytes = totalBytes
        self.totalItems = totalItems
    }

    func bytes(_ count: Int64, item: Int, name: String) {
        lock.lock()
        bytes[item] = count
        let sum = bytes.values.reduce(0, +)
        let done = completed
        lock.unlock()
        reporter.update(completedBytes: sum, totalBytes: totalBytes, completedItems: done, totalItems: totalItems,
                        current: name)
    }

    func completed(item: Int, size: Int64, name: String) {
        lock.lock()
        bytes[item] = size
        completed += 1
        let sum = bytes.values.reduce(0, +)
        let done = completed
        lock.unlock()
        reporter.update(completedBytes: sum, totalBytes: totalBytes, completedItems: done, totalItems: totalItems,
                        current: name)
    }
}

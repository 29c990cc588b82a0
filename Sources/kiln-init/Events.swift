import Glibc
import KilnConfig
import KilnSystem

/// Writes `KILN {json}` lines on the console: the host harness reads these, and only these, to judge a boot.
enum Events {
    static let start = MonotonicClock.nanoseconds()

    static func emit(_ event: String, _ fields: [(String, JSONValue)] = []) {
        let members: [(String, JSONValue)] = [("event", .string(event)), ("ms", .double(elapsedMilliseconds()))] + fields
        line("KILN " + JSONValue.object(members).serialized)
    }

    static func elapsedMilliseconds() -> Double {
        (MonotonicClock.millisecondsSince(start) * 10).rounded() / 10
    }

    /// One write per line so lines from threads never interleave mid-line.
    static func line(_ text: String) {
        var bytes = Array(text.utf8)
        bytes.append(0x0A)
        bytes.withUnsafeBytes { buf in
            var offset = 0
            while offset < buf.count {
                let n = write(1, buf.baseAddress! + offset, buf.count - offset)
                if n < 0 { if errno == EINTR { continue }; return }
                offset += n
            }
        }
    }

    static func log(_ text: String) { line("kiln-init: " + text) }

    /// Seconds since the kernel started, from /proc/uptime (kernel + initramfs unpack time before /init).
    static func uptimeMilliseconds() -> Double? {
        guard let text = try? FileSystem.readText("/proc/uptime"), let first = text.split(separator: " ").first,
              let seconds = Double(first) else { return nil }
        return seconds * 1000
    }
}

/// One console line, without its line ending or terminal escape sequences, and when it arrived.
public struct ConsoleLine: Sendable, Equatable, Codable {
    /// Seconds since QEMU started.
    public var seconds: Double
    public var text: String

    public init(seconds: Double, text: String) {
        self.seconds = seconds
        self.text = text
    }
}

/// A named point in a boot, in seconds since QEMU started: `kernel`, `init`, `phase:links`, `ready`, `panic`.
public struct BootMilestone: Sendable, Equatable, Codable {
    public var name: String
    public var seconds: Double

    public init(name: String, seconds: Double) {
        self.name = name
        self.seconds = seconds
    }

    /// The kernel's first console line ("Linux version …", or any printk-timestamped line under `quiet`).
    public static let kernel = "kernel"
    /// The kernel starting the init process ("Run /init as init process").
    public static let initStarted = "init"
    /// The guest's READY event.
    public static let ready = "ready"
    /// "Kernel panic - not syncing".
    public static let panic = "panic"
    /// Milestone name for a finished kiln-init phase.
    public static func phase(_ name: String) -> String { "phase:\(name)" }
}

/// What feeding console bytes produced, in order.
public enum ConsoleSignal: Sendable, Equatable {
    case line(ConsoleLine)
    case milestone(BootMilestone)
    case event(ConsoleEvent)
    /// A line that starts a `KILN ` record but whose JSON is not an object with an `"event"` string.
    case malformedEvent(ConsoleLine)
}

/// Turns the raw bytes of a serial console into lines, boot milestones and Kiln events. A pure value: feed it
/// chunks as they arrive (lines may be split anywhere, also inside a UTF-8 sequence or a `\r\n`), with the time
/// since QEMU started; it keeps a bounded tail of lines for failure reports.
public struct ConsoleEventParser: Sendable {
    /// How many lines `tail` keeps.
    public let tailLimit: Int
    /// Longer lines are cut and emitted in pieces of this many bytes (a guest printing without newlines
    /// cannot grow memory without bound).
    public let maxLineLength: Int

    /// The last `tailLimit` lines.
    public var tail: [ConsoleLine] { Array(tailRing[tailStart...]) + Array(tailRing[..<tailStart]) }
    /// Every milestone seen, in order; each name at most once.
    public private(set) var milestones: [BootMilestone] = []
    /// Every well-formed Kiln event, in order.
    public private(set) var events: [ConsoleEvent] = []
    /// Number of complete lines seen.
    public private(set) var lineCount = 0

    private var partial: [UInt8] = []
    private var lastSeconds: Double = 0
    private var lastByteWasCR = false
    private var tailRing: [ConsoleLine] = []
    private var tailStart = 0

    public init(tailLimit: Int = 200, maxLineLength: Int = 4096) {
        self.tailLimit = max(tailLimit, 1)
        self.maxLineLength = max(maxLineLength, 16)
    }

    /// Seconds of the named milestone, if it was reached.
    public func milestone(_ name: String) -> Double? { milestones.first { $0.name == name }?.seconds }

    /// The first `phase-failed` event, if any.
    public var failedPhase: ConsoleEvent? { events.first { $0.name == "phase-failed" } }

    /// Consumes `bytes` that arrived `seconds` after QEMU started. A line is stamped with the time its end arrived:
    /// its start may be much earlier (SeaBIOS prints "Probing EDD… " and the kernel's first line continues it
    /// seconds later).
    public mutating func feed(_ bytes: some Sequence<UInt8>, at seconds: Double) -> [ConsoleSignal] {
        var signals: [ConsoleSignal] = []
        lastSeconds = seconds
        for byte in bytes {
            defer { lastByteWasCR = byte == 0x0D }
            if byte == 0x0A && lastByteWasCR { continue }  // the \n of a \r\n whose \r ended the line
            if byte == 0x0A || byte == 0x0D {
                completeLine(at: seconds, into: &signals)
                continue
            }
            partial.append(byte)
            if partial.count >= maxLineLength { completeLine(at: seconds, into: &signals) }
        }
        return signals
    }

    /// Emits a trailing partial line (at end of output), stamped with `seconds` or the last feed's time.
    public mutating func finish(at seconds: Double? = nil) -> [ConsoleSignal] {
        var signals: [ConsoleSignal] = []
        if !partial.isEmpty { completeLine(at: seconds ?? lastSeconds, into: &signals) }
        return signals
    }

    private mutating func completeLine(at seconds: Double, into signals: inout [ConsoleSignal]) {
        let text = Self.clean(partial)
        partial.removeAll(keepingCapacity: true)
        if text.isEmpty { return }
        let line = ConsoleLine(seconds: seconds, text: text)
        lineCount += 1
        remember(line)
        signals.append(.line(line))
        classify(line, into: &signals)
    }

    private mutating func remember(_ line: ConsoleLine) {
        if tailRing.count < tailLimit {
            tailRing.append(line)
        } else {
            tailRing[tailStart] = line
            tailStart = (tailStart + 1) % tailLimit
        }
    }

    private mutating func classify(_ line: ConsoleLine, into signals: inout [ConsoleSignal]) {
        let text = line.text
        if let marker = text.range(of: "KILN {") {
            let json = text[text.index(before: marker.upperBound)...]
            guard let event = ConsoleEvent.parse(json: json, seconds: line.seconds) else {
                signals.append(.malformedEvent(line))
                return
            }
            events.append(event)
            signals.append(.event(event))
            // A kiln-init event proves init runs even when `quiet` hid the kernel's own line.
            reach(BootMilestone.initStarted, at: line.seconds, into: &signals)
            switch event.name {
            case "phase": if let phase = event.phase { reach(BootMilestone.phase(phase), at: line.seconds, into: &signals) }
            case "ready": reach(BootMilestone.ready, at: line.seconds, into: &signals)
            default: break
            }
            return
        }
        if text.contains("Linux version") || Self.hasPrintkTimestamp(text) {
            reach(BootMilestone.kernel, at: line.seconds, into: &signals)
        }
        if text.contains("Run /init as init process") || (text.contains("Run ") && text.hasSuffix(" as init process")) {
            reach(BootMilestone.initStarted, at: line.seconds, into: &signals)
        }
        if text.contains("Kernel panic - not syncing") {
            reach(BootMilestone.panic, at: line.seconds, into: &signals)
        }
    }

    private mutating func reach(_ name: String, at seconds: Double, into signals: inout [ConsoleSignal]) {
        guard milestone(name) == nil else { return }
        let milestone = BootMilestone(name: name, seconds: seconds)
        milestones.append(milestone)
        signals.append(.milestone(milestone))
    }

    /// `[    0.000000] ` at the start of a line, as printk writes it with CONFIG_PRINTK_TIME.
    static func hasPrintkTimestamp(_ text: String) -> Bool {
        var scalars = Substring(text).unicodeScalars[...]
        guard scalars.first == "[" else { return false }
        scalars = scalars.dropFirst().drop { $0 == " " }
        let whole = scalars.prefix { $0.properties.numericType == .decimal }
        guard !whole.isEmpty else { return false }
        scalars = scalars.dropFirst(whole.count)
        guard scalars.first == "." else { return false }
        scalars = scalars.dropFirst()
        let fraction = scalars.prefix { $0.properties.numericType == .decimal }
        return fraction.count == 6 && scalars.dropFirst(6).first == "]"
    }

    /// Decodes UTF-8 (invalid bytes replaced) and drops terminal escape sequences and control characters,
    /// keeping tabs; trailing spaces go too.
    static func clean(_ bytes: [UInt8]) -> String {
        var out = String.UnicodeScalarView()
        var iterator = String(decoding: bytes, as: UTF8.self).unicodeScalars.makeIterator()
        while let scalar = iterator.next() {
            if scalar == "\u{1B}" {
                guard let next = iterator.next() else { break }
                if next == "[" {  // CSI: parameters, then one final byte in 0x40...0x7E
                    while let c = iterator.next(), !(0x40...0x7E).contains(c.value) {}
                }
                continue  // a two-character escape (ESC c, ESC 7, …) drops the second character too
            }
            if scalar.value < 0x20 && scalar != "\t" { continue }
            if scalar.value == 0x7F { continue }
            out.append(scalar)
        }
        while let last = out.last, last == " " || last == "\t" { out.removeLast() }
        return String(out)
    }
}

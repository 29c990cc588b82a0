import Testing
@testable import KilnVM

/// Recorded from a real boot (Debian 6.1 cloud kernel, QEMU 7.2 TCG, no initrd; lines abridged), with a kiln-init-style tail
/// spliced in; `\r\n` endings and SeaBIOS's terminal escapes as they came.
private let recordedConsole: [UInt8] = Array((
    "\u{1B}c\u{1B}[?7l\u{1B}[2J\u{1B}[0mSeaBIOS (version 1.16.2-debian-1.16.2-1)\r\nBooting from ROM...\r\n"
    + "Probing EDD (edd=off to disable)... o\u{1B}c\u{1B}[?7l\u{1B}[2J[    0.000000] Linux version 6.1.0-56-cloud-amd64 "
    + "#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2\r\n"
    + "[    0.000000] Command line: console=ttyS0 panic=-1\r\n"
    + "[    0.912345] Run /init as init process\r\n"
    + "KILN {\"event\":\"phase\",\"phase\":\"mount\",\"ms\":1.5}\r\n"
    ).utf8) + [0x00, 0x07] + Array("garbage ".utf8) + [0xFF, 0xFE] + Array((" bytes\r\n"
    + "KILN {\"event\":\"phase\",\"phase\":\"links\",\"ms\":12.3}\r\n"
    + "KILN {not json\r\n"
    + "KILN {\"phase\":\"no event field\"}\r\n"
    + "KILN {\"event\":\"ready\",\"ms\":412,\"ok\":true,\"nics\":[\"wan\",\"lan\"]}\r\n").utf8)

private func feedAll(_ parser: inout ConsoleEventParser, _ bytes: [UInt8], chunk: Int, at seconds: Double = 1) -> [ConsoleSignal] {
    var signals: [ConsoleSignal] = []
    var index = 0
    while index < bytes.count {
        let end = min(index + chunk, bytes.count)
        signals += parser.feed(bytes[index..<end], at: seconds + Double(index) / 1000)
        index = end
    }
    return signals + parser.finish()
}

@Suite struct ConsoleEventParserTests {
    @Test func recordedBootGivesMilestonesAndEventsWhateverTheChunking() throws {
        var reference: ConsoleEventParser?
        for chunk in [1, 2, 3, 7, 64, 100_000] {
            var parser = ConsoleEventParser()
            let signals = feedAll(&parser, recordedConsole, chunk: chunk)
            #expect(parser.milestones.map(\.name) == ["kernel", "init", "phase:mount", "phase:links", "ready"])
            #expect(parser.events.map(\.name) == ["phase", "phase", "ready"])
            #expect(parser.events[1].phase == "links")
            #expect(parser.events[1].milliseconds == 12.3)
            #expect(parser.events[2].fields["ok"] == .bool(true))
            #expect(parser.events[2].fields["nics"] == .array([.string("wan"), .string("lan")]))
            #expect(parser.events[2]["ms"] == "412")
            let malformed = signals.compactMap { if case .malformedEvent(let line) = $0 { return line.text } else { return nil } }
            #expect(malformed == ["KILN {not json", "KILN {\"phase\":\"no event field\"}"])
            #expect(parser.lineCount == 11)
            if let reference {
                #expect(parser.tail.map(\.text) == reference.tail.map(\.text))
            }
            reference = parser
        }
    }

    @Test func linesAreCleanedOfEscapesAndControlBytes() {
        var parser = ConsoleEventParser()
        _ = feedAll(&parser, recordedConsole, chunk: 5)
        let texts = parser.tail.map(\.text)
        #expect(texts[0] == "SeaBIOS (version 1.16.2-debian-1.16.2-1)")
        #expect(texts[2].hasPrefix("Probing EDD (edd=off to disable)... o[    0.000000] Linux version 6.1.0"))
        #expect(texts[6] == "garbage \u{FFFD}\u{FFFD} bytes")
        #expect(!texts.contains { $0.unicodeScalars.contains { $0.value < 0x20 } })
    }

    @Test func lineEndingsCRLFBareCRAndLFSplitAcrossFeeds() {
        var parser = ConsoleEventParser()
        var lines: [String] = []
        for piece in ["one\r", "\ntwo\n", "three\r", "four\r\n\r\n", "fi", "ve"] {
            for case .line(let line) in parser.feed(Array(piece.utf8), at: 0) { lines.append(line.text) }
        }
        #expect(lines == ["one", "two", "three", "four"])
        for case .line(let line) in parser.finish() { lines.append(line.text) }
        #expect(lines.last == "five")
    }

    @Test func lineTakesTheTimeItsEndArrived() {
        var parser = ConsoleEventParser()
        _ = parser.feed(Array("Probing EDD (edd=off to disable)... o".utf8), at: 0.3)
        let signals = parser.feed(Array("\u{1B}c[    0.000000] Linux version 6.1\r\n".utf8), at: 1.5)
        #expect(signals.contains(.milestone(BootMilestone(name: "kernel", seconds: 1.5))))
        _ = parser.feed(Array("tail without newline".utf8), at: 2.0)
        #expect(parser.finish(at: 2.5) == [.line(ConsoleLine(seconds: 2.5, text: "tail without newline"))])
    }

    @Test func tailIsBoundedAndKeepsTheNewestInOrder() {
        var parser = ConsoleEventParser(tailLimit: 3)
        for number in 1...10 { _ = parser.feed(Array("line \(number)\n".utf8), at: Double(number)) }
        #expect(parser.tail.map(\.text) == ["line 8", "line 9", "line 10"])
        #expect(parser.tail.map(\.seconds) == [8, 9, 10])
        #expect(parser.lineCount == 10)
    }

    @Test func overlongLinesAreCut() {
        var parser = ConsoleEventParser(tailLimit: 10, maxLineLength: 16)
        _ = parser.feed([UInt8](repeating: 0x61, count: 40), at: 0)
        _ = parser.finish()
        #expect(parser.tail.map(\.text.count) == [16, 16, 8])
    }

    @Test func kernelPanicIsAMilestoneAndNotReady() {
        var parser = ConsoleEventParser()
        let text = "[    8.106549] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)\r\n"
        _ = parser.feed(Array(text.utf8), at: 8.2)
        #expect(parser.milestone(BootMilestone.panic) == 8.2)
        #expect(parser.milestone(BootMilestone.kernel) == 8.2)  // a printk-stamped line is a kernel line
        #expect(parser.milestone(BootMilestone.ready) == nil)
        #expect(VirtualMachine.panicReason(parser.tail[0].text) == "VFS: Unable to mount root fs on unknown-block(0,0)")
    }

    @Test func phaseFailedEventIsFound() {
        var parser = ConsoleEventParser()
        let text = #"KILN {"event":"phase-failed","phase":"firewall","error":"nft: syntax error, line 3"}"# + "\n"
        _ = parser.feed(Array(text.utf8), at: 1)
        #expect(parser.failedPhase?.phase == "firewall")
        #expect(parser.failedPhase?["error"] == "nft: syntax error, line 3")
        #expect(parser.milestone(BootMilestone.initStarted) == 1)  // a kiln-init line proves /init runs
    }

    @Test func quietKernelIsRecognisedByItsPrintkTimestamp() {
        #expect(ConsoleEventParser.hasPrintkTimestamp("[    0.000000] x"))
        #expect(ConsoleEventParser.hasPrintkTimestamp("[12345.123456] x"))
        #expect(!ConsoleEventParser.hasPrintkTimestamp("[ ok ] started"))
        #expect(!ConsoleEventParser.hasPrintkTimestamp("[    0.00000] short"))
        #expect(!ConsoleEventParser.hasPrintkTimestamp("x [    0.000000]"))
    }

    @Test func bootReportRoundTripsThroughJSONAndNamesTheFailure() throws {
        var parser = ConsoleEventParser()
        _ = feedAll(&parser, recordedConsole, chunk: 9)
        let report = BootReport(
            vm: "r1", accelerator: "tcg", outcome: .phaseFailed(phase: "firewall", error: "boom"),
            milestones: parser.milestones, events: parser.events, consoleTail: parser.tail)
        let data = try JSONEncoder().encode(report)
        #expect(try JSONDecoder().decode(BootReport.self, from: data) == report)
        #expect(report.failureSummary == "VM r1: phase firewall failed: boom")
        #expect(report.text.contains("console (last 11 lines):"))
        #expect(report.text.contains("  kernel        1."))
        let timed = BootReport(vm: "r1", accelerator: "tcg", outcome: .timedOut(seconds: 30), milestones: [], events: [], consoleTail: [])
        #expect(timed.failureSummary == "VM r1: no READY within 30 s")
    }
}

import Foundation

@Suite struct ConsoleValueTests {
    @Test func jsonTextIsValidJSONAndRoundTrips() throws {
        let value = ConsoleValue.object([
            "execute": .string("set_link"),
            "arguments": .object(["name": .string("w\"a\\n\n"), "up": .bool(false), "n": .number(1.5), "z": .null, "l": .array([.number(2)])]),
        ])
        let text = value.jsonText
        #expect(text.hasPrefix(#"{"arguments":{"l":[2],"n":1.5,"name":"w\"a\\n\n","up":false,"z":null},"execute":"set_link"}"#))
        let parsed = try JSONSerialization.jsonObject(with: Data(text.utf8))
        #expect(ConsoleValue(foundation: parsed) == value)
        #expect(try JSONDecoder().decode(ConsoleValue.self, from: JSONEncoder().encode(value)) == value)
    }
}

import Glibc
import KilnConfig
import KilnSystem

extension Switch {
    /// The guest config (or a file holding just the section) with the switch under `switch`.
    private struct Document: Decodable {
        var `switch`: SwitchSpec?
    }

    /// Where the builder puts the section in the image.
    public static let defaultConfigPath = "/etc/kiln/switch.json"

    /// Reads the `switch` section from the JSON file at `configPath` (the compiled guest config, or a file
    /// holding only the section), opens the ports and forwards until SIGTERM or SIGINT.
    /// Exit status: 0 after a signal, 1 for a bad config, 2 when a port cannot be opened or the loop fails.
    /// This is what `kiln-init service switch` runs under the supervisor; `ready` is called once every port is
    /// open, before the first frame is forwarded.
    public static func run(configPath: String = defaultConfigPath, ready: () -> Void = {}) -> Int32 {
        let spec: SwitchSpec
        do {
            let bytes = try FileDescriptor.open(configPath, .readOnly).readAll()
            if let section = try KilnJSON.decode(Document.self, from: bytes).switch {
                spec = section
            } else {
                spec = try KilnJSON.decode(SwitchSpec.self, from: bytes)
            }
            _ = try spec.compile()
        } catch {
            report("kiln switch: \(configPath): \(error)")
            return 1
        }
        do {
            let signals = SignalSet([SIGTERM, SIGINT])
            try Signals.block(signals)
            let descriptor = try SignalDescriptor(signals, nonBlocking: true)
            let sw = try Switch(spec: spec)
            let ports = zip(sw.portNames, sw.transmitPaths).map { "\($0) (\($1))" }
            report("kiln switch: forwarding between \(ports.joined(separator: ", "))")
            ready()
            try sw.run(extraFD: descriptor.fd.rawValue)
            for (name, (c, drops)) in zip(sw.portNames, zip(sw.counters, sw.ringDrops())) {
                report("kiln switch: \(name): rx \(c.rxPackets) tx \(c.txPackets) dropped \(c.rxDropped) tx errors \(c.txErrors) ring drops \(drops)")
            }
            return 0
        } catch {
            report("kiln switch: \(error)")
            return 2
        }
    }

    private static func report(_ line: String) {
        let bytes = Array((line + "\n").utf8)
        _ = bytes.withUnsafeBytes { Glibc.write(2, $0.baseAddress, $0.count) }
    }
}

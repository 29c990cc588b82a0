import Foundation
import KilnImage
import Testing
@testable import KilnDeploy

let goldenDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden").path

/// Compares text with `Golden/<name>`; `KILN_UPDATE_GOLDEN=1` rewrites the file for review.
func compareGolden(_ name: String, _ text: String) throws {
    let path = goldenDirectory + "/" + name
    if ProcessInfo.processInfo.environment["KILN_UPDATE_GOLDEN"] != nil {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }
    let expected = try String(contentsOfFile: path, encoding: .utf8)
    if expected != text {
        let a = expected.split(separator: "\n", omittingEmptySubsequences: false)
        let b = text.split(separator: "\n", omittingEmptySubsequences: false)
        let first = zip(a, b).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(a.count, b.count)
        Issue.record("\(name) differs at line \(first + 1):\n  golden: \(first < a.count ? String(a[first]) : "<end>")\n  actual: \(first < b.count ? String(b[first]) : "<end>")")
    }
}

/// The router's build report as `kiln build` writes it (NIC names and MACs from Appliances/router.yaml).
func routerInfo(extra: [(String, String, Int)] = [], only: [(String, String, Int)]? = nil) throws -> BuildInfo {
    let artifacts = only ?? [("initramfs.cpio.zst", String(repeating: "1", count: 64), 4_765_478),
                     ("vmlinuz", String(repeating: "2", count: 64), 14_186_432)] + extra
    let json = """
    {"name":"router","kernelRelease":"6.1.0-41-cloud-amd64","cmdline":"console=ttyS0 panic=-1 quiet loglevel=4 random.trust_cpu=on",
     "sourceDateEpoch":1700000000,
     "nics":[{"name":"wan","mac":"52:54:00:00:01:01"},{"name":"lan","mac":"52:54:00:00:01:02"}],
     "artifacts":[\(artifacts.map { "{\"file\":\"\($0.0)\",\"sha256\":\"\($0.1)\",\"size\":\($0.2)}" }.joined(separator: ","))],
     "inputs":[],"layers":[],"sizes":{},"timings":{}}
    """
    return try JSONDecoder().decode(BuildInfo.self, from: Data(json.utf8))
}

/// A scratch directory removed when the test ends.
final class ScratchDirectory {
    let path: String
    init(_ tag: String) throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-deploy-\(tag)-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }

    func write(_ name: String, _ text: String) throws -> String {
        let p = path + "/" + name
        try Data(text.utf8).write(to: URL(fileURLWithPath: p))
        return p
    }
}

/// Runs a tool and returns its exit status and combined output.
@discardableResult
func shell(_ argv: [String], input: String? = nil) throws -> (status: Int32, output: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = argv
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    p.standardInput = FileHandle.nullDevice
    try p.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
}

func toolExists(_ name: String) -> Bool {
    (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/usr/sbin").split(separator: ":")
        .contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(name)") }
}

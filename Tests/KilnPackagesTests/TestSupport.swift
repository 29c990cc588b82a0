import Foundation
@testable import KilnPackages

/// Runs a tool from PATH and returns its exit status (posix_spawn + waitpid, bounded in time).
func runTool(_ tool: String, _ arguments: [String], timeout: Double = 120) throws -> Int32 {
    try Subprocess.run([tool] + arguments, timeout: timeout).status
}

/// A fresh directory under the system temp dir, removed by the caller with `removeTree`.
func makeTempDirectory(_ label: String) throws -> String {
    let path = NSTemporaryDirectory() + "kiln-pkgs-\(label)-\(UUID().uuidString.prefix(8))"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

func removeTree(_ path: String) {
    try? FileManager.default.removeItem(atPath: path)
}

func writeFile(_ path: String, _ text: String) throws {
    try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                            withIntermediateDirectories: true)
    try text.write(toFile: path, atomically: true, encoding: .utf8)
}

/// The directory holding this test target's helper scripts.
let helpersDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Helpers").path

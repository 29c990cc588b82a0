import Foundation
import Glibc
@testable import KilnImage

/// A fresh temporary directory for one test; `cleanup()` removes it.
struct TemporaryDirectory {
    let path: String

    init() throws {
        var template = Array((NSTemporaryDirectory() + "kiln-image-test-XXXXXX").utf8CString)
        let created = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        guard let created else { throw ImageError.system(operation: "mkdtemp", path: NSTemporaryDirectory(), errno: errno) }
        path = String(cString: created)
    }

    func cleanup() { try? FileSystem.removeTree(path) }

    func write(_ relative: String, _ text: String, mode: mode_t = 0o644) throws {
        try write(relative, Array(text.utf8), mode: mode)
    }

    func write(_ relative: String, _ bytes: [UInt8], mode: mode_t = 0o644) throws {
        let full = path + "/" + relative
        try FileSystem.makeDirectories(FileSystem.parentPath(full))
        try FileSystem.writeFile(full, bytes, mode: mode, sync: false)
        chmod(full, mode)
    }
}

/// The result of running a real tool.
struct ToolResult {
    var status: Int32
    var stdout: [UInt8]
    var stderr: String
    var text: String { String(decoding: stdout, as: UTF8.self) }
}

/// Runs `tool` (searched in PATH) with `arguments`, feeding `input` on stdin, in `directory`.
func runTool(_ tool: String, _ arguments: [String], input: [UInt8] = [], directory: String? = nil) throws -> ToolResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = [tool] + arguments
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
    process.standardInput = stdin
    process.standardOutput = stdout
    process.standardError = stderr
    try process.run()
    let errorBox = DataBox()
    let done = DispatchSemaphore(value: 0)
    let writeHandle = stdin.fileHandleForWriting, errorHandle = stderr.fileHandleForReading
    signal(SIGPIPE, SIG_IGN)
    DispatchQueue.global().async {
        if !input.isEmpty { try? writeHandle.write(contentsOf: Data(input)) }
        try? writeHandle.close()
    }
    DispatchQueue.global().async {
        errorBox.data = errorHandle.readDataToEndOfFile()
        done.signal()
    }
    let output = stdout.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    done.wait()
    let errorData = errorBox.data
    return ToolResult(status: process.terminationStatus, stdout: Array(output),
                      stderr: String(decoding: errorData, as: UTF8.self))
}

/// Whether a tool is on PATH.
func haveTool(_ tool: String) -> Bool {
    (try? runTool("sh", ["-c", "command -v \(tool)"]).status) == 0
}

private final class DataBox: @unchecked Sendable {
    var data = Data()
}

/// glibc's makedev/major/minor are macros Swift cannot see; the Linux dev_t encoding.
func deviceNumber(_ major: UInt64, _ minor: UInt64) -> dev_t {
    dev_t((minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xff) << 12) | ((major & ~0xfff) << 32))
}
func deviceMajor(_ dev: dev_t) -> UInt64 { (UInt64(dev) >> 8) & 0xfff | ((UInt64(dev) >> 32) & ~0xfff) }
func deviceMinor(_ dev: dev_t) -> UInt64 { (UInt64(dev) & 0xff) | ((UInt64(dev) >> 12) & ~0xff) }

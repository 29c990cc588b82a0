import Glibc
import KilnSystem

/// Runs a real command to completion and returns its exit status and standard output.
public func runProcess(_ arguments: [String]) throws -> (status: TerminationStatus, output: String) {
    let pipe = try FileDescriptor.pipe()
    let pid = try ChildProcess.spawn(arguments, stdout: pipe.write.rawValue)
    try pipe.write.close()
    let output = try pipe.read.readAll()
    let status = try ChildProcess.wait(pid)
    return (status, String(decoding: output, as: UTF8.self))
}

/// A fresh directory under /tmp, removed with its contents afterwards.
public func withTemporaryDirectory<T>(_ body: (String) throws -> T) throws -> T {
    var template = Array("/tmp/kiln-test-XXXXXX".utf8CString)
    guard let made = mkdtemp(&template) else { throw Errno(errno, operation: "mkdtemp") }
    let path = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
    _ = made
    defer { _ = try? runProcess(["/bin/rm", "-rf", path]) }
    return try body(path)
}

/// A network namespace made with `ip netns add` for this test only, deleted afterwards even on failure.
public func withTestNamespace<T>(_ body: (String) throws -> T) throws -> T {
    let name = "kiln-test-\(UInt32.random(in: 0...UInt32.max))"
    let created = try runProcess(["ip", "netns", "add", name])
    guard created.status.isSuccess else { throw Errno(EIO, operation: "ip netns add", subject: name) }
    defer { _ = try? runProcess(["ip", "netns", "del", name]) }
    return try body(name)
}

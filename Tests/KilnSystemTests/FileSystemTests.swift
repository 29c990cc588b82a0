import Glibc
import Testing
import KilnTestSupport
@testable import KilnSystem

@Suite struct FileSystemTests {
    @Test func writeAndReadBack() throws {
        try withTemporaryDirectory { dir in
            let bytes: [UInt8] = Array(0...255) + Array("kiln".utf8)
            try FileSystem.writeFile("\(dir)/plain", bytes)
            #expect(try FileSystem.readFile("\(dir)/plain") == bytes)
        }
    }

    @Test func atomicWriteReplacesAndLeavesNoTemporary() throws {
        try withTemporaryDirectory { dir in
            let path = "\(dir)/config.json"
            try FileSystem.writeFile(path, "old", atomically: true)
            try FileSystem.writeFile(path, "{\"new\":true}", atomically: true, mode: 0o600)
            #expect(try FileSystem.readText(path) == "{\"new\":true}")
            var info = stat()
            #expect(stat(path, &info) == 0 && info.st_mode & 0o777 == 0o600)
            let listing = try runProcess(["/bin/ls", "-A", dir]).output
            #expect(listing == "config.json\n")
        }
    }

    @Test func readLimitIsAnErrorNotATruncation() throws {
        try withTemporaryDirectory { dir in
            try FileSystem.writeFile("\(dir)/big", [UInt8](repeating: 1, count: 100_000))
            #expect(throws: Errno(EFBIG, operation: "read", subject: "\(dir)/big")) {
                _ = try FileSystem.readFile("\(dir)/big", limit: 1000)
            }
        }
    }

    @Test func makeDirectoryWithParentsIsIdempotent() throws {
        try withTemporaryDirectory { dir in
            try FileSystem.makeDirectory("\(dir)/a/b/c")
            try FileSystem.makeDirectory("\(dir)/a/b/c")
            #expect(FileSystem.isDirectory("\(dir)/a/b/c"))
            try FileSystem.writeFile("\(dir)/file", "x")
            #expect(throws: Errno(EEXIST, operation: "mkdir", subject: "\(dir)/file")) {
                try FileSystem.makeDirectory("\(dir)/file/sub")
            }
        }
    }

    @Test func symlinkAcceptsTheSameLinkTwice() throws {
        try withTemporaryDirectory { dir in
            try FileSystem.symlink(target: "/proc/self/fd", at: "\(dir)/fd")
            try FileSystem.symlink(target: "/proc/self/fd", at: "\(dir)/fd")
            #expect(try FileSystem.readLink("\(dir)/fd") == "/proc/self/fd")
            #expect(throws: Errno.self) { try FileSystem.symlink(target: "/elsewhere", at: "\(dir)/fd") }
        }
    }

    @Test func mountTmpfsAndUnmount() throws {
        try withTemporaryDirectory { dir in
            try Kernel.mount(source: "kiln", target: dir, fstype: "tmpfs", flags: [.noSetUID, .noDevices], data: "size=1m")
            try FileSystem.writeFile("\(dir)/inside", "tmpfs")
            let mounts = try FileSystem.readText("/proc/self/mounts")
            #expect(mounts.contains("kiln \(dir) tmpfs"))
            try Kernel.unmount(dir)
            #expect(!FileSystem.exists("\(dir)/inside"))
        }
    }

    @Test func monotonicClockAdvances() {
        let start = MonotonicClock.nanoseconds()
        usleep(2000)
        #expect(MonotonicClock.nanoseconds() - start >= 2_000_000)
    }
}

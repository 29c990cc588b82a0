import Foundation
import Testing
@testable import KilnVM

@Suite(.serialized) struct ManagedProcessTests {
    @Test func collectsOutputAndExitStatus() throws {
        let process = try ManagedProcess(["sh", "-c", "echo out; echo err >&2; exit 3"])
        #expect(process.wait(timeout: 10) == .exited(3))
        #expect(process.outputText == "out\n")
        #expect(process.errorText == "err\n")
        #expect(process.termination?.isSuccess == false)
    }

    @Test func environmentWorkingDirectoryAndStdinPipe() throws {
        let directory = FileManager.default.temporaryDirectory.path
        let process = try ManagedProcess(.init(
            arguments: ["sh", "-c", "echo \"$KILN_X $(pwd)\"; read line; echo \"got $line\""],
            environment: ["KILN_X": "hello", "PATH": "/usr/bin:/bin"], workingDirectory: directory,
            standardInput: .pipe))
        try process.write(Array("ping\n".utf8))
        #expect(process.wait(timeout: 10) == .exited(0))
        let realDirectory = URL(fileURLWithPath: directory).resolvingSymlinksInPath().path
        #expect(process.outputText == "hello \(realDirectory)\ngot ping\n")
    }

    @Test func childHasItsOwnSessionAndNoStrayDescriptors() throws {
        let process = try ManagedProcess(["sh", "-c", "ps -o sid=,pgid= -p $$; ls /proc/self/fd"])
        #expect(process.wait(timeout: 10) == .exited(0))
        let lines = process.outputText.split(separator: "\n")
        let ids = lines.first?.split(separator: " ").compactMap { Int32($0) }
        #expect(ids == [process.pid, process.pid])
        // ls itself sees 0, 1, 2 and the directory it reads: nothing inherited beyond stdio.
        #expect(lines.dropFirst().compactMap { Int($0) }.filter { $0 > 3 } == [])
    }

    @Test func outputLargerThanAPipeBufferDoesNotBlockAndIsBounded() throws {
        let process = try ManagedProcess(.init(
            arguments: ["sh", "-c", "head -c 1000000 /dev/zero; echo END"], standardOutput: .collect(limit: 1000)))
        #expect(process.wait(timeout: 20) == .exited(0))
        #expect(process.standardOutput.count == 1000)
        #expect(process.outputText.hasSuffix("END\n"))
    }

    @Test func streamHandlerSeesEveryByteThenAnEmptyChunk() throws {
        final class Sink: @unchecked Sendable {
            let lock = NSLock()
            var bytes: [UInt8] = []
            var ended = false
        }
        let sink = Sink()
        let process = try ManagedProcess(.init(
            arguments: ["sh", "-c", "seq 1 2000"],
            standardOutput: .stream { chunk in
                sink.lock.withLock { if chunk.isEmpty { sink.ended = true } else { sink.bytes += chunk } }
            }))
        #expect(process.wait(timeout: 10) == .exited(0))
        let expected = (1...2000).map { "\($0)\n" }.joined()
        sink.lock.withLock {
            #expect(String(decoding: sink.bytes, as: UTF8.self) == expected)
            #expect(sink.ended)
        }
    }

    @Test func missingProgramFailsToSpawnWithItsName() {
        #expect {
            _ = try ManagedProcess(["kiln-no-such-program-xyz"])
        } throws: { error in
            "\(error)" == "cannot start kiln-no-such-program-xyz: No such file or directory"
        }
    }

    @Test func waitTimesOutThenTerminateKillsTheWholeTree() throws {
        // The shell starts two background sleepers and waits; a TERM-ignoring one forces the SIGKILL path.
        let process = try ManagedProcess(.init(
            arguments: ["sh", "-c", "sleep 300 & echo $!; (trap '' TERM; exec sleep 300) & echo $!; wait"],
            standardOutput: .collect))
        let pidsDeadline = Deadline.after(seconds: 10)
        while process.outputText.split(separator: "\n").count < 2 && !pidsDeadline.hasPassed { usleep(20_000) }
        let children = process.outputText.split(separator: "\n").compactMap { Int32($0) }
        #expect(children.count == 2)
        #expect(process.wait(timeout: 0.3) == nil)
        #expect(process.isRunning)

        let termination = process.terminate(grace: 0.5)
        #expect(termination == .signaled(SIGTERM))
        // The TERM-ignoring sleeper outlives the leader's SIGTERM; it must be dead all the same (SIGKILL).
        #expect(!process.isRunning)
        let goneDeadline = Deadline.after(seconds: 5)
        while !children.allSatisfy(isDead) && !goneDeadline.hasPassed { usleep(20_000) }
        for child in children { #expect(isDead(child), "child \(child) still runs: \(processState(child) ?? "-")") }
    }

    @Test func leaderThatExitedStillHasItsStragglersKilled() throws {
        let process = try ManagedProcess(.init(
            arguments: ["sh", "-c", "sleep 300 >/dev/null 2>&1 & echo $!"], standardOutput: .collect))
        #expect(process.wait(timeout: 10) == .exited(0))
        let straggler = try #require(Int32(process.outputText.split(separator: "\n").first ?? ""))
        #expect(!isDead(straggler))
        process.close()
        let deadline = Deadline.after(seconds: 5)
        while !isDead(straggler) && !deadline.hasPassed { usleep(20_000) }
        #expect(isDead(straggler))
    }

    @Test func droppingTheObjectKillsTheProcess() throws {
        var pid: Int32 = 0
        do {
            let process = try ManagedProcess(["sleep", "300"])
            pid = process.pid
            #expect(!isDead(pid))
        }
        // deinit ran terminate(): SIGTERM, reaped (so not even a zombie remains).
        #expect(processState(pid) == nil)
    }

    @Test func waitOrTerminateThrowsTimedOut() throws {
        let process = try ManagedProcess(["sleep", "300"])
        #expect {
            _ = try process.waitOrTerminate(deadline: .after(seconds: 0.2), grace: 0.2)
        } throws: { error in
            if case VMError.timedOut = error { return true }
            return false
        }
        #expect(!process.isRunning)
    }
}

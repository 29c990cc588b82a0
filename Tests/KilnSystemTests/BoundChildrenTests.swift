import CKilnShims
import Glibc
import KilnTestSupport
import Testing
@testable import KilnSystem

/// Children bound to Kiln: killed when it dies (PR_SET_PDEATHSIG, sent when the forking thread exits), forked by a
/// thread that lives as long as the process, and swept by the next run when a dead run's file still lists them.
@Suite struct BoundChildrenTests {
    /// A child forked with a death signal directly by `thread`'s body; nil if the fork failed.
    static func spawnFromThisThread(_ argv: [String]) -> pid_t {
        let args = argv.map { strdup($0) } + [nil]
        defer { args.forEach { free($0) } }
        let fds: [Int32] = [-1, -1, -1]
        return args.withUnsafeBufferPointer { a in
            fds.withUnsafeBufferPointer { f in
                kiln_spawn(argv[0], UnsafeMutablePointer(mutating: a.baseAddress!), environ, f.baseAddress, 3, nil, 1, 1, SIGKILL)
            }
        }
    }

    @Test func aBoundChildOutlivesTheThreadThatAskedForItButNotTheThreadThatForkedIt() throws {
        let pids = PidBox()
        let worker = try JoinableThread("test worker") {
            // Forked by this short-lived thread: killed when it exits, exactly as on the death of the process.
            pids.sentinel = Self.spawnFromThisThread(["sleep", "600"])
            // Asked for by this thread, forked by the spawn thread: it must survive this thread.
            pids.bound = (try? BoundChildren.spawn(["sleep", "600"], descriptors: [-1, -1, -1], newSession: true)) ?? -1
        }
        worker.join()
        #expect(pids.sentinel > 0 && pids.bound > 0)
        // The sentinel's death signal is sent when the worker's exit is processed, so once it is reaped the
        // kernel has dealt with every child that thread's exit would kill.
        #expect(try ChildProcess.wait(pids.sentinel) == .signaled(SIGKILL))
        #expect(try ChildProcess.tryWait(pids.bound) == nil, "a bound child died with the thread that asked for it")
        kill(pids.bound, SIGKILL)
        #expect(try ChildProcess.wait(pids.bound) == .signaled(SIGKILL))
        RunRecord.shared.remove(pids.bound)
    }

    @Test func theNextRunEndsWhatADeadRunLeftInItsFile() throws { try withTemporaryDirectory { directory in
        // A run that is gone: a pid that has exited (and been reaped), with its start time.
        let gone = try ChildProcess.spawn(["true"])
        _ = try ChildProcess.wait(gone)
        // What it left: a session whose leader has a background child, as a `run:` check's `sh -c` would.
        let leader = try ChildProcess.spawn(["sh", "-c", "sleep 600 & wait"], newSession: true)
        let leaderStart = try #require(RunRecord.startTime(of: leader))
        try FileSystem.writeFile(directory + "/\(gone)-12345.children", "\(leader) \(leaderStart)\n")
        // A live run's file is left alone: this process's own.
        let mine = directory + "/\(getpid())-\(RunRecord.startTime(of: getpid()) ?? 0).children"
        try FileSystem.writeFile(mine, "\(leader) \(leaderStart)\n")

        #expect(RunRecord.sweep(directory) == [leader])
        #expect(try ChildProcess.wait(leader) == .signaled(SIGKILL))
        // The background sleep was in the leader's group: the group is gone once init has reaped it.
        #expect(eventually { kill(-leader, 0) == -1 && errno == ESRCH }, "the leader's background child survived the sweep")
        #expect(!FileSystem.exists(directory + "/\(gone)-12345.children"))
        #expect(FileSystem.exists(mine))
    } }

    @Test func aRecordedChildIsListedUntilRemoved() throws { try withTemporaryDirectory { directory in
        let record = RunRecord()
        record.start(directory: directory)
        defer { record.finish() }
        let pid = try ChildProcess.spawn(["sleep", "600"], newSession: true)
        record.add(pid)
        let file = directory + "/\(getpid())-\(RunRecord.startTime(of: getpid()) ?? 0).children"
        #expect(try FileSystem.readText(file) == "\(pid) \(RunRecord.startTime(of: pid) ?? 0)\n")
        record.killAll()
        #expect(try ChildProcess.wait(pid) == .signaled(SIGKILL))
        record.remove(pid)
        #expect(try FileSystem.readText(file) == "")
    } }
}

final class PidBox: @unchecked Sendable {
    var sentinel: pid_t = -1
    var bound: pid_t = -1
}

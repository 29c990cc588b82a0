import Foundation
import Glibc
import Testing
@testable import KilnPackages

/// What interrupted builds leave behind is removed by the next one, and only what no live process owns.
struct LeftoversTests {
    /// The id of a process that has exited.
    func deadPID() throws -> pid_t {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/true")
        try p.run()
        p.waitUntilExit()
        return p.processIdentifier
    }

    @Test func temporaryNamesAndTheirOwners() {
        #expect(Leftovers.owner(ofTemporaryName: ".router.tmp-4242") == 4242)
        #expect(Leftovers.owner(ofTemporaryName: "0123abcd.tmp-77") == 77)
        #expect(Leftovers.owner(ofTemporaryName: "accel.json.tmp-12-3456") == 12)
        #expect(Leftovers.owner(ofTemporaryName: ".router.old-9") == 9)
        #expect(Leftovers.owner(ofTemporaryName: "router") == nil)
        #expect(Leftovers.owner(ofTemporaryName: "a.tmp-") == nil)
        #expect(Leftovers.owner(ofTemporaryName: "a.tmp-12x") == nil)
    }

    @Test func theNextBuildRemovesLeftoversOfDeadProcessesOnly() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-leftovers-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let cache = PackageCache(directory: root + "/cache")
        let dead = try deadPID()
        let fm = FileManager.default
        for dir in ["out", "cache/trees", "cache/debs", "cache/layers", "cache/indices"] {
            try fm.createDirectory(atPath: root + "/" + dir, withIntermediateDirectories: true)
        }
        // Left by a killed build: an output directory, an extracted tree with contents, a layer, two downloads.
        try fm.createDirectory(atPath: root + "/out/.router.tmp-\(dead)/sub", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: root + "/cache/trees/abc.tmp-\(dead)/usr/lib", withIntermediateDirectories: true)
        fm.createFile(atPath: root + "/cache/trees/abc.tmp-\(dead)/usr/lib/big", contents: Data(count: 4096))
        fm.createFile(atPath: root + "/cache/layers/.k.cpio.zst.tmp-\(dead)", contents: Data([1]))
        fm.createFile(atPath: root + "/cache/debs/d.deb.partial", contents: Data())
        fm.createFile(atPath: root + "/cache/indices/i.partial", contents: Data([1, 2]))
        // Owned by live processes: this one, pid 1, and a download in progress (its lock held).
        try fm.createDirectory(atPath: root + "/out/.router.tmp-\(getpid())", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: root + "/cache/trees/def.tmp-1", withIntermediateDirectories: true)
        let busy = try Leftovers.lockPartial(root + "/cache/debs/busy.deb.partial")
        defer { close(busy) }
        // Not leftovers at all.
        try fm.createDirectory(atPath: root + "/out/router", withIntermediateDirectories: true)
        fm.createFile(atPath: root + "/cache/debs/done.deb", contents: Data([3]))

        let removed = (cache.sweepLeftovers() + Leftovers.sweep(root + "/out")).map { String($0.dropFirst(root.count + 1)) }.sorted()
        #expect(removed == ["cache/debs/d.deb.partial", "cache/indices/i.partial", "cache/layers/.k.cpio.zst.tmp-\(dead)",
                            "cache/trees/abc.tmp-\(dead)", "out/.router.tmp-\(dead)"])
        for kept in ["out/.router.tmp-\(getpid())", "cache/trees/def.tmp-1", "cache/debs/busy.deb.partial", "out/router", "cache/debs/done.deb"] {
            #expect(fm.fileExists(atPath: root + "/" + kept), "\(kept)")
        }
        // A download that locks the partial after a sweep removed it works on a new file the path names.
        close(try Leftovers.lockPartial(root + "/cache/debs/d.deb.partial"))
        #expect(fm.fileExists(atPath: root + "/cache/debs/d.deb.partial"))
    }
}

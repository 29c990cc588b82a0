import Dispatch
import Glibc
import Synchronization
import KilnDedup
import KilnSystem
import Testing

/// A fresh directory under /tmp, removed at deinit.
final class TempDir {
    let path: String
    init(_ name: String) {
        var template = Array("/tmp/kiln-\(name)-XXXXXX".utf8CString)
        path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    }
    deinit { _ = system("rm -rf '\(path)'") }
    func files() -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let e = readdir(dir) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name.hasSuffix(".seg") { names.append(path + "/" + name) }
        }
        return names.sorted()
    }
    func size(_ file: String) -> Int { var s = stat(); stat(file, &s); return Int(s.st_size) }
}

func chunks(_ n: Int, size: Int, seed: UInt64) -> [(ChunkID, [UInt8])] {
    (0..<n).map { i in
        let b = randomBytes(size + i % 97, seed: seed &+ UInt64(i))
        return (ChunkID(hashing: b), b)
    }
}

@Suite struct ChunkStoreTests {
    @Test func insertReadAndReopen() throws {
        let dir = TempDir("store")
        let items = chunks(200, size: 5000, seed: 10)
        do {
            let store = try ChunkStore(directory: dir.path, capacity: 64 << 20)
            for (id, b) in items { #expect(store.insert(id, b)) }
            for (id, b) in items { #expect(store.read(id) == b) }
            #expect(store.read(ChunkID(hashing: [1, 2, 3])) == nil)
            #expect(!store.contains(ChunkID(hashing: [1, 2, 3])))
            #expect(store.statistics.chunks == 200)
        }
        let reopened = try ChunkStore(directory: dir.path, capacity: 64 << 20)
        #expect(reopened.statistics.chunks == 200)
        #expect(reopened.statistics.tornRecords == 0)
        for (id, b) in items { #expect(reopened.read(id) == b) }
    }

    @Test func tornTailIsDroppedAndStoreGoesOn() throws {
        let dir = TempDir("torn")
        let items = chunks(20, size: 3000, seed: 20)
        do {
            let store = try ChunkStore(directory: dir.path, capacity: 64 << 20)
            for (id, b) in items { store.insert(id, b) }
        }
        // A crash in the middle of the last record: its data is cut short.
        let file = try #require(dir.files().last)
        let fullSize = dir.size(file)
        #expect(truncate(file, off_t(fullSize - 100)) == 0)
        do {
            let store = try ChunkStore(directory: dir.path, capacity: 64 << 20)
            #expect(store.statistics.tornRecords == 1)
            #expect(store.statistics.chunks == 19)
            for (id, b) in items.dropLast() { #expect(store.read(id) == b) }
            #expect(store.read(items.last!.0) == nil)
            // The torn record was cut away, so new records follow whole ones.
            let (id, b) = items.last!
            #expect(store.insert(id, b))
            #expect(store.read(id) == b)
        }
        // A crash inside a record header (garbage shorter than a header) and then trailing junk.
        let fd = open(file, O_WRONLY | O_APPEND)
        let junk: [UInt8] = [0x4B, 0x43, 0x52, 0x31, 0xff, 0xff]
        #expect(write(fd, junk, junk.count) == junk.count)
        close(fd)
        let again = try ChunkStore(directory: dir.path, capacity: 64 << 20)
        #expect(again.statistics.tornRecords == 1)
        #expect(again.statistics.chunks == 20)
        for (id, b) in items { #expect(again.read(id) == b) }
    }

    @Test func corruptChunkIsReportedMissing() throws {
        let dir = TempDir("corrupt")
        let items = chunks(10, size: 4000, seed: 30)
        let store = try ChunkStore(directory: dir.path, capacity: 64 << 20)
        for (id, b) in items { store.insert(id, b) }
        // Flip one data byte of the fourth record (records are 40-byte header + data, in insertion order).
        var offset = 0
        for (_, b) in items.prefix(3) { offset += 40 + b.count }
        offset += 40 + 1234
        let file = try #require(dir.files().first)
        let fd = open(file, O_RDWR)
        var byte: UInt8 = 0
        #expect(pread(fd, &byte, 1, off_t(offset)) == 1)
        byte ^= 0x20
        #expect(pwrite(fd, &byte, 1, off_t(offset)) == 1)
        close(fd)
        #expect(store.read(items[3].0) == nil)
        #expect(store.statistics.corrupt == 1)
        #expect(!store.contains(items[3].0))
        for (i, (id, b)) in items.enumerated() where i != 3 { #expect(store.read(id) == b) }
        // Stored again (the peer resent it), it reads back right.
        #expect(store.insert(items[3].0, items[3].1))
        #expect(store.read(items[3].0) == items[3].1)
    }

    @Test func staysWithinCapacityAndKeepsWhatIsUsed() throws {
        let dir = TempDir("evict")
        let capacity = 2 << 20
        let store = try ChunkStore(directory: dir.path, capacity: capacity, segmentSize: 256 << 10)
        let (hotID, hot) = chunks(1, size: 8000, seed: 40)[0]
        let (coldID, cold) = chunks(1, size: 8000, seed: 41)[0]
        store.insert(hotID, hot)
        store.insert(coldID, cold)
        let items = chunks(1500, size: 8000, seed: 50) // ~12 MB through a 2 MiB store
        for (i, (id, b)) in items.enumerated() {
            store.insert(id, b)
            if i % 20 == 0 { #expect(store.read(hotID) == hot) }
            let onDisk = dir.files().reduce(0) { $0 + dir.size($1) }
            #expect(onDisk <= capacity, "\(onDisk) bytes on disk after \(i) chunks")
        }
        let s = store.statistics
        #expect(s.bytes <= capacity)
        #expect(s.evicted > 1000)
        #expect(store.read(hotID) == hot)
        #expect(store.read(coldID) == nil)
        #expect(store.read(items.last!.0) == items.last!.1)
        #expect(store.read(items.first!.0) == nil)
        // Reopened, the bound and the survivors hold.
        let reopened = try ChunkStore(directory: dir.path, capacity: capacity, segmentSize: 256 << 10)
        #expect(reopened.read(hotID) == hot)
        #expect(reopened.read(items.last!.0) == items.last!.1)
        #expect(reopened.statistics.bytes <= capacity)
    }

    /// Flows share one store: concurrent inserts and reads from several threads stay consistent.
    @Test func concurrentUse() throws {
        let dir = TempDir("threads")
        let store = try ChunkStore(directory: dir.path, capacity: 8 << 20, segmentSize: 512 << 10)
        let shared = chunks(50, size: 3000, seed: 60)
        for (id, b) in shared { store.insert(id, b) }
        let failures = Mutex(0)
        DispatchQueue.concurrentPerform(iterations: 4) { t in
            let own = chunks(300, size: 6000, seed: 70 + UInt64(t) * 1000)
            var bad = 0
            for (i, (id, b)) in own.enumerated() {
                if !store.insert(id, b) { bad += 1 }
                if let back = store.read(id), back != b { bad += 1 }
                let (sid, sb) = shared[i % shared.count]
                if let back = store.read(sid), back != sb { bad += 1 }
            }
            failures.withLock { $0 += bad }
        }
        #expect(failures.withLock { $0 } == 0)
        #expect(store.statistics.corrupt == 0)
        #expect(store.statistics.bytes <= 8 << 20)
    }

    @Test func unusableDirectoryIsAnError() {
        #expect(throws: Errno.self) { _ = try ChunkStore(directory: "/proc/kiln-no-such/store", capacity: 1 << 20) }
    }
}

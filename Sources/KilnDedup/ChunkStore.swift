import Glibc
import KilnSystem

/// One optimizer's chunk store: chunks by id, bounded in bytes, kept in append-only segment files under a
/// directory with the index in memory, so it survives a restart. When the files exceed the capacity the oldest
/// segment is deleted; a chunk used while it sits in the oldest quarter is copied forward first (segmented LRU).
/// Every read checks the chunk's hash: a chunk whose bytes changed on disk is dropped and reported missing.
///
/// Segment file `NNNNNNNN.seg`: records of [magic "KCR1"][length u32 LE][id 32 bytes][length bytes]. A record cut
/// short by a crash ends the scan of its segment at reopen and is truncated away.
/// Thread-safe: the flows of one optimizer share it.
public final class ChunkStore: @unchecked Sendable {
    public let directory: String
    public let capacity: Int
    public let segmentSize: Int

    /// Counters since the store was opened.
    public struct Statistics: Sendable, Equatable {
        public var chunks = 0
        /// Bytes in segment files, record headers included.
        public var bytes = 0
        public var segments = 0
        public var hits = 0
        public var misses = 0
        /// Chunks dropped because their segment was evicted.
        public var evicted = 0
        /// Chunks whose bytes no longer matched their id (or could not be read).
        public var corrupt = 0
        /// Records discarded at reopen because a crash cut them short.
        public var tornRecords = 0
        public var writeErrors = 0
        /// Hits over lookups, 0 before the first lookup.
        public var hitRate: Double { hits + misses == 0 ? 0 : Double(hits) / Double(hits + misses) }
    }

    struct Location { var segment: UInt32; var offset: UInt32; var length: UInt32 }

    final class Segment {
        let number: UInt32
        let fd: FileDescriptor
        var size: Int
        var ids: [ChunkID] = []
        init(number: UInt32, fd: FileDescriptor, size: Int) { self.number = number; self.fd = fd; self.size = size }
    }

    static let recordMagic: UInt32 = 0x3152_434B // "KCR1" little-endian
    static let headerSize = 40
    /// The largest chunk a record may hold (a Chunker's maximum for the largest average is 32 MiB).
    public static let maxChunkSize = 32 << 20

    private var lock = pthread_mutex_t()
    private var index: [ChunkID: Location] = [:]
    private var segments: [Segment] = [] // oldest first; the last one takes appends
    private var stats = Statistics()
    /// Which chunk followed which in the last stream that had it (memory only): the chunk after a reference is
    /// likely the old version of a new chunk, a good base for a delta.
    private var successors: [ChunkID: ChunkID] = [:]
    /// Resemblance features of chunks this side sent (memory only), for delta bases no cursor finds.
    private var similar: [UInt64: ChunkID] = [:]

    /// Opens (creating if needed) the store in `directory`. `capacity` bounds the segment files' total size;
    /// segments default to a sixteenth of it (between 1 and 64 MiB).
    public init(directory: String, capacity: Int, segmentSize: Int? = nil) throws(Errno) {
        self.directory = directory
        self.segmentSize = Swift.min(1 << 30, segmentSize ?? Swift.min(64 << 20, Swift.max(1 << 20, capacity / 16)))
        self.capacity = Swift.max(capacity, 2 * self.segmentSize)
        pthread_mutex_init(&lock, nil)
        try FileSystem.makeDirectory(directory, mode: 0o700)
        try reopen()
        try evictIfNeeded()
        if segments.isEmpty { try startSegment() }
    }

    deinit { pthread_mutex_destroy(&lock) }

    public var statistics: Statistics {
        locked { var s = stats; s.chunks = index.count; s.segments = segments.count; return s }
    }

    /// True when the store holds `id` (by its index; the bytes are checked when read). Counts as a use.
    public func contains(_ id: ChunkID) -> Bool {
        locked {
            guard let location = index[id] else { stats.misses += 1; return false }
            stats.hits += 1
            promoteIfOld(id, location)
            return true
        }
    }

    /// Appends the chunk's bytes to `output` and returns true, or returns false when the store lacks it or its
    /// bytes no longer hash to `id` (then it is forgotten). Counts as a use.
    public func read(_ id: ChunkID, appendingTo output: inout [UInt8]) -> Bool {
        locked {
            guard let location = index[id] else { stats.misses += 1; return false }
            let start = output.count
            guard readVerified(id, location, appendingTo: &output) else {
                output.removeSubrange(start...)
                forget(id)
                stats.corrupt += 1
                stats.misses += 1
                return false
            }
            stats.hits += 1
            promoteIfOld(id, location, bytes: output[start...])
            return true
        }
    }

    public func read(_ id: ChunkID) -> [UInt8]? {
        var out: [UInt8] = []
        return read(id, appendingTo: &out) ? out : nil
    }

    /// Stores a chunk; `id` must be the hash of `bytes` (callers have computed or verified it). A chunk already
    /// held is not written again. Returns false when it could not be written (the store then lacks it).
    @discardableResult
    public func insert(_ id: ChunkID, _ bytes: UnsafeRawBufferPointer) -> Bool {
        guard bytes.count <= ChunkStore.maxChunkSize else { return false }
        return locked {
            if index[id] != nil { return true }
            return append(id, bytes)
        }
    }

    @discardableResult
    public func insert(_ id: ChunkID, _ bytes: [UInt8]) -> Bool { bytes.withUnsafeBytes { insert(id, $0) } }

    /// Remembers a chunk's resemblance features (`Resemblance.features`), so a similar new chunk finds it.
    public func recordFeatures(_ features: [UInt64], of id: ChunkID) {
        locked {
            guard index[id] != nil else { return }
            if similar.count > 4 * index.count + 1024 { similar = similar.filter { index[$0.value] != nil } }
            for (k, f) in features.enumerated() { similar[f &+ UInt64(k) &* 0x9E37_79B9_7F4A_7C15] = id }
        }
    }

    /// A held chunk sharing the most features with `features`, if any; of several with as many, the one that reached
    /// that count first in feature order (not the dictionary's order, which Swift seeds anew in every process: the
    /// same input picks the same base every run).
    public func similarChunk(_ features: [UInt64]) -> ChunkID? {
        locked {
            var votes: [ChunkID: Int] = [:]
            var best: ChunkID?, bestVotes = 0
            for (k, f) in features.enumerated() {
                if let id = similar[f &+ UInt64(k) &* 0x9E37_79B9_7F4A_7C15], index[id] != nil {
                    let n = votes[id, default: 0] + 1
                    votes[id] = n
                    if n > bestVotes { best = id; bestVotes = n }
                }
            }
            return best
        }
    }

    /// Notes that `next` followed `previous` in a stream.
    public func recordSuccessor(_ next: ChunkID, after previous: ChunkID) {
        locked { if index[previous] != nil { successors[previous] = next } }
    }

    /// The chunk that last followed `id`, if the store still holds both.
    public func successor(of id: ChunkID) -> ChunkID? {
        locked {
            guard let next = successors[id], index[next] != nil else { return nil }
            return next
        }
    }

    // MARK: - Inside the lock

    private func locked<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        return body()
    }

    private func segment(_ number: UInt32) -> Segment? {
        guard let first = segments.first, number >= first.number else { return nil }
        let i = Int(number - first.number)
        return i < segments.count && segments[i].number == number ? segments[i] : segments.first { $0.number == number }
    }

    private func path(_ number: UInt32) -> String {
        var digits = String(number)
        while digits.count < 8 { digits = "0" + digits }
        return directory + "/" + digits + ".seg"
    }

    private func readVerified(_ id: ChunkID, _ location: Location, appendingTo output: inout [UInt8]) -> Bool {
        guard let segment = segment(location.segment) else { return false }
        let length = Int(location.length), start = output.count
        output.append(contentsOf: repeatElement(0, count: length))
        var ok = true
        output.withUnsafeMutableBytes { buffer in
            var done = 0
            while done < length {
                let n = pread(segment.fd.rawValue, buffer.baseAddress! + start + done, length - done,
                              off_t(Int(location.offset) + ChunkStore.headerSize + done))
                if n == -1 && errno == EINTR { continue }
                if n <= 0 { ok = false; return }
                done += n
            }
            ok = ChunkID(hashing: UnsafeRawBufferPointer(rebasing: buffer[start..<(start + length)])) == id
        }
        return ok
    }

    private func forget(_ id: ChunkID) { index[id] = nil; successors[id] = nil }

    /// A chunk in the oldest quarter of the store is about to be evicted: copy it to the current segment.
    private func promoteIfOld(_ id: ChunkID, _ location: Location, bytes: ArraySlice<UInt8>? = nil) {
        guard segments.count >= 4, let first = segments.first,
              location.segment < first.number + UInt32(segments.count / 4) else { return }
        var data: [UInt8]
        if let bytes { data = Array(bytes) } else {
            data = []
            guard readVerified(id, location, appendingTo: &data) else { forget(id); stats.corrupt += 1; return }
        }
        index[id] = nil
        _ = data.withUnsafeBytes { append(id, $0) }
    }

    private func append(_ id: ChunkID, _ bytes: UnsafeRawBufferPointer) -> Bool {
        let recordSize = ChunkStore.headerSize + bytes.count
        do {
            if let current = segments.last, current.size > 0, current.size + recordSize > segmentSize {
                try startSegment()
                try evictIfNeeded()
            }
            guard let current = segments.last else { return false }
            var header = [UInt8](repeating: 0, count: ChunkStore.headerSize)
            header.withUnsafeMutableBytes { h in
                h.storeBytes(of: ChunkStore.recordMagic.littleEndian, toByteOffset: 0, as: UInt32.self)
                h.storeBytes(of: UInt32(bytes.count).littleEndian, toByteOffset: 4, as: UInt32.self)
                id.write(to: h.baseAddress! + 8)
            }
            // One writev per record: a crash leaves at most this record torn.
            let written = header.withUnsafeBytes { h in
                var iov = [iovec(iov_base: UnsafeMutableRawPointer(mutating: h.baseAddress), iov_len: h.count),
                           iovec(iov_base: UnsafeMutableRawPointer(mutating: bytes.baseAddress), iov_len: bytes.count)]
                return iov.withUnsafeMutableBufferPointer { v in
                    pwritev(current.fd.rawValue, v.baseAddress, bytes.count > 0 ? 2 : 1, off_t(current.size))
                }
            }
            guard written == recordSize else {
                // Leave no partial record behind for the next append to follow.
                _ = ftruncate(current.fd.rawValue, off_t(current.size))
                stats.writeErrors += 1
                return false
            }
            index[id] = Location(segment: current.number, offset: UInt32(current.size), length: UInt32(bytes.count))
            current.ids.append(id)
            current.size += recordSize
            stats.bytes += recordSize
            return true
        } catch {
            stats.writeErrors += 1
            return false
        }
    }

    private func startSegment() throws(Errno) {
        let number = (segments.last?.number ?? 0) &+ 1
        let p = path(number)
        let fd = try FileDescriptor.open(p, [.readWrite, .create, .truncate], mode: 0o600)
        segments.append(Segment(number: number, fd: fd, size: 0))
    }

    /// Keeps room for the segment taking appends to fill up, so the files never exceed the capacity.
    private func evictIfNeeded() throws(Errno) {
        while stats.bytes - (segments.last?.size ?? 0) + segmentSize > capacity, segments.count > 1 {
            let old = segments.removeFirst()
            for id in old.ids where index[id]?.segment == old.number {
                forget(id)
                stats.evicted += 1
            }
            stats.bytes -= old.size
            try FileSystem.remove(path(old.number))
        }
    }

    /// Rebuilds the index from the segment files, oldest first; a later record of the same id wins.
    private func reopen() throws(Errno) {
        var numbers: [UInt32] = []
        guard let dir = opendir(directory) else { throw Errno(errno, operation: "opendir", subject: directory) }
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard name.hasSuffix(".seg"), name.utf8.count == 12, let n = UInt32(name.prefix(8)) else { continue }
            numbers.append(n)
        }
        closedir(dir)
        numbers.sort()
        var header = [UInt8](repeating: 0, count: ChunkStore.headerSize)
        for number in numbers {
            let p = path(number)
            let fd = try FileDescriptor.open(p, [.readWrite])
            var info = stat()
            try systemCall("fstat", p) { fstat(fd.rawValue, &info) }
            let fileSize = Int(info.st_size)
            let segment = Segment(number: number, fd: fd, size: 0)
            var offset = 0
            while offset + ChunkStore.headerSize <= fileSize {
                let n = header.withUnsafeMutableBytes { pread(fd.rawValue, $0.baseAddress, $0.count, off_t(offset)) }
                guard n == ChunkStore.headerSize else { break }
                let (magic, length, id) = header.withUnsafeBytes { h in
                    (UInt32(littleEndian: h.loadUnaligned(fromByteOffset: 0, as: UInt32.self)),
                     Int(UInt32(littleEndian: h.loadUnaligned(fromByteOffset: 4, as: UInt32.self))),
                     ChunkID(digest: UnsafeRawBufferPointer(rebasing: h[8..<40])))
                }
                guard magic == ChunkStore.recordMagic, length <= ChunkStore.maxChunkSize,
                      offset + ChunkStore.headerSize + length <= fileSize else { break }
                index[id] = Location(segment: number, offset: UInt32(offset), length: UInt32(length))
                segment.ids.append(id)
                offset += ChunkStore.headerSize + length
            }
            if offset < fileSize {
                stats.tornRecords += 1
                try systemCall("ftruncate", p) { ftruncate(fd.rawValue, off_t(offset)) }
            }
            segment.size = offset
            stats.bytes += offset
            segments.append(segment)
        }
    }
}

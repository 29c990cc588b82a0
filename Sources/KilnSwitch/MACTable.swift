/// The learned location of every (VLAN, MAC) pair, in fixed memory: a MAC flood cannot grow it.
///
/// Open addressing with linear probing over arrays sized once at init (twice the global limit, a power of two),
/// so learning and lookup never allocate. Each VLAN has its own address space (the key is VLAN and MAC), which is
/// what per-VLAN tables mean in 802.1Q: the same MAC may sit on different ports in different VLANs.
///
/// Bounds: at most `limit` entries overall and `portLimit` per port. A new address beyond either bound is not
/// learned (frames to it are flooded, as for any unknown unicast) and counted in `refused`; entries older than
/// `agingNanoseconds` count as absent and are reclaimed by `expire(now:)` or when their slot is reused.
public struct MACTable {
    /// Where one address was last seen.
    public struct Entry: Equatable, Sendable {
        public var port: Int
        public var lastSeen: UInt64
    }

    /// What `learn` did, for counters and tests.
    public enum LearnResult: Equatable, Sendable {
        case refreshed, learned, moved(from: Int), refused
    }

    public let limit: Int
    public let portLimit: Int
    public var agingNanoseconds: UInt64
    /// Live entries (some may be past their age until the next `expire`).
    public private(set) var count = 0
    /// Addresses not learned because a bound was reached.
    public private(set) var refused: UInt64 = 0
    /// Learned addresses seen on a different port than before.
    public private(set) var moves: UInt64 = 0

    private static let occupied: UInt64 = 1 << 63
    private var keys: [UInt64]
    private var ports: [Int32]
    private var seen: [UInt64]
    private var perPort: [Int32]
    private let mask: Int
    /// When a full table last scanned itself for aged entries (see `learn`).
    private var lastReclaim: UInt64 = 0
    private static let reclaimInterval: UInt64 = 1_000_000_000

    /// A table for `portCount` ports holding at most `limit` entries overall and `portLimit` per port.
    public init(portCount: Int, limit: Int, portLimit: Int, agingSeconds: UInt64) {
        self.limit = max(1, limit)
        self.portLimit = max(1, min(portLimit, self.limit))
        agingNanoseconds = agingSeconds &* 1_000_000_000
        var size = 16
        while size < self.limit * 2 { size <<= 1 }
        mask = size - 1
        keys = [UInt64](repeating: 0, count: size)
        ports = [Int32](repeating: 0, count: size)
        seen = [UInt64](repeating: 0, count: size)
        perPort = [Int32](repeating: 0, count: max(1, portCount))
    }

    @inline(__always)
    static func key(vlan: UInt16, mac: UInt64) -> UInt64 {
        occupied | UInt64(vlan & 0xfff) << 48 | (mac & 0xffff_ffff_ffff)
    }

    @inline(__always)
    private func slot(_ key: UInt64) -> Int {
        var h = key &* 0x9E37_79B9_7F4A_7C15
        h ^= h >> 29
        return Int(truncatingIfNeeded: h) & mask
    }

    @inline(__always)
    private func find(_ key: UInt64) -> Int? {
        var i = slot(key)
        while true {
            let k = keys[i]
            if k == key { return i }
            if k == 0 { return nil }
            i = (i + 1) & mask
        }
    }

    /// The port `mac` was last seen on in `vlan`, unless unknown or aged out at `now`.
    @inline(__always)
    public func lookup(vlan: UInt16, mac: UInt64, now: UInt64) -> Int? {
        guard let i = find(Self.key(vlan: vlan, mac: mac)) else { return nil }
        if now &- seen[i] > agingNanoseconds { return nil }
        return Int(ports[i])
    }

    /// The entry for `mac` in `vlan`, aged or not (for inspection).
    public func entry(vlan: UInt16, mac: UInt64) -> Entry? {
        guard let i = find(Self.key(vlan: vlan, mac: mac)) else { return nil }
        return Entry(port: Int(ports[i]), lastSeen: seen[i])
    }

    /// Records that `mac` sent a frame on `port` in `vlan` at `now`. Group addresses are never learned.
    @discardableResult
    public mutating func learn(vlan: UInt16, mac: UInt64, port: Int, now: UInt64) -> LearnResult {
        if mac & 0x0100_0000_0000 != 0 { return .refused }
        let key = Self.key(vlan: vlan, mac: mac)
        if let i = find(key) {
            seen[i] = now
            let old = Int(ports[i])
            if old == port { return .refreshed }
            if perPort[port] >= portLimit {
                remove(at: i)
                refused &+= 1
                return .refused
            }
            perPort[old] -= 1
            perPort[port] += 1
            ports[i] = Int32(port)
            moves &+= 1
            return .moved(from: old)
        }
        if count >= limit || perPort[port] >= portLimit {
            // Reclaim aged entries before refusing: a flood's stale addresses must not lock out new hosts. At most
            // once a second: under a flood every frame lands here, and a scan is the whole table.
            if now &- lastReclaim >= Self.reclaimInterval {
                lastReclaim = now
                expire(now: now)
            }
            if count >= limit || perPort[port] >= portLimit {
                refused &+= 1
                return .refused
            }
        }
        var i = slot(key)
        while keys[i] != 0 { i = (i + 1) & mask }
        keys[i] = key
        ports[i] = Int32(port)
        seen[i] = now
        perPort[port] += 1
        count += 1
        return .learned
    }

    /// Removes every entry not seen within the aging time; returns how many went.
    @discardableResult
    public mutating func expire(now: UInt64) -> Int {
        var removed = 0
        var i = 0
        while i <= mask {
            if keys[i] != 0, now &- seen[i] > agingNanoseconds {
                remove(at: i)
                removed += 1
                continue  // backward shift may have moved another entry into slot i
            }
            i += 1
        }
        return removed
    }

    /// Forgets everything learned on `port` (link down, reconfiguration).
    public mutating func flush(port: Int) {
        var i = 0
        while i <= mask {
            if keys[i] != 0, Int(ports[i]) == port { remove(at: i); continue }
            i += 1
        }
    }

    /// Entries currently held for `port`.
    public func count(port: Int) -> Int { Int(perPort[port]) }

    /// Every live entry as (vlan, mac, port), for a `show` command and tests.
    public func entries() -> [(vlan: UInt16, mac: UInt64, port: Int)] {
        var out: [(vlan: UInt16, mac: UInt64, port: Int)] = []
        for i in 0...mask where keys[i] != 0 {
            out.append((UInt16(truncatingIfNeeded: keys[i] >> 48) & 0xfff, keys[i] & 0xffff_ffff_ffff, Int(ports[i])))
        }
        return out
    }

    /// Deletion with backward shift (Knuth 6.4 algorithm R): no tombstones, so probes stay short under churn.
    private mutating func remove(at index: Int) {
        perPort[Int(ports[index])] -= 1
        count -= 1
        var hole = index
        var j = index
        while true {
            j = (j + 1) & mask
            let k = keys[j]
            if k == 0 { break }
            let home = slot(k)
            // Move k into the hole unless its home lies cyclically in (hole, j].
            let inRange = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j)
            if inRange { continue }
            keys[hole] = k
            ports[hole] = ports[j]
            seen[hole] = seen[j]
            hole = j
        }
        keys[hole] = 0
    }
}

/// The sliding anti-replay window of RFC 6479: a ring of 64-bit blocks; advancing clears whole blocks, so the
/// cost does not depend on how far the counter jumps.
public struct ReplayWindow: Sendable {
    /// Blocks in the ring (a power of two). 32 blocks: 2048 bits, of which 1984 are always usable.
    static let blocks = 32
    static let bitsTotal = UInt64(blocks * 64)
    /// Counters this far behind the highest seen are still accepted once.
    public static let windowSize = bitsTotal - 64
    /// Counters at or beyond this are never accepted (2^64 - 2^13 - 1, REJECT_AFTER_MESSAGES).
    public static let rejectAfterMessages: UInt64 = UInt64.max - (1 << 13)

    private var bitmap = (
        UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0),
        UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0),
        UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0),
        UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0)
    )
    /// The highest counter accepted so far (0 before any).
    public private(set) var greatest: UInt64 = 0

    public init() {}

    /// Accepts `counter` once: false if it is too old, already seen, or past the message limit. Call only after
    /// the packet authenticated.
    public mutating func accept(_ counter: UInt64) -> Bool {
        guard counter < ReplayWindow.rejectAfterMessages else { return false }
        let mask = UInt64(ReplayWindow.blocks - 1)
        let index = counter >> 6
        if counter > greatest {
            let current = greatest >> 6
            let top = min(index - current, UInt64(ReplayWindow.blocks))
            if top > 0 { for i in 1...top { setBlock(Int((current + i) & mask), 0) } }
            greatest = counter
        } else if greatest - counter >= ReplayWindow.windowSize {
            return false
        }
        let slot = Int(index & mask)
        let bit = UInt64(1) << (counter & 63)
        let old = block(slot)
        if old & bit != 0 { return false }
        setBlock(slot, old | bit)
        return true
    }

    @inline(__always) private func block(_ i: Int) -> UInt64 {
        withUnsafeBytes(of: bitmap) { $0.load(fromByteOffset: i * 8, as: UInt64.self) }
    }

    @inline(__always) private mutating func setBlock(_ i: Int, _ value: UInt64) {
        withUnsafeMutableBytes(of: &bitmap) { $0.storeBytes(of: value, toByteOffset: i * 8, as: UInt64.self) }
    }
}

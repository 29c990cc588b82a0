import CKilnHash

/// Resemblance features of a chunk ("super-features", Shilane et al., FAST 2012, simplified): for each of three
/// fixed random linear maps, the largest image of the gear hash over sampled positions of the chunk (computed in
/// CKilnHash). Chunks that share most of their content share most features, whatever moved inside them, so a new
/// chunk finds a stored near-duplicate to send a delta against when the stream order gives none.
public enum Resemblance {
    public static func features(_ bytes: UnsafeRawBufferPointer) -> [UInt64] {
        guard bytes.count >= 64, let base = bytes.baseAddress else { return [] }
        var out: (UInt64, UInt64, UInt64) = (0, 0, 0)
        Gear.table.withUnsafeBufferPointer { gear in
            withUnsafeMutableBytes(of: &out) { o in
                kiln_resemblance(base.assumingMemoryBound(to: UInt8.self), bytes.count, gear.baseAddress,
                                 o.baseAddress!.assumingMemoryBound(to: UInt64.self))
            }
        }
        return [out.0, out.1, out.2]
    }
}

import Glibc
import KilnDedup

extension DedupEncoder: ChunkStatistics {
    public var chunks: UInt64 { UInt64(statistics.chunks) }
    public var chunkHits: UInt64 { UInt64(statistics.referencedChunks) }
}

extension CodecFactory {
    /// Kiln's data reduction: FastCDC chunks, references to chunks the side's store holds, zstd for the rest.
    /// Every flow's encoder and decoder share `store` (chunks sent and chunks received both go in it, so each
    /// side's store mirrors the other's). The settings are checked here, once, by building the first pair.
    public static func dedup(store: ChunkStore, averageChunkSize: Int, compressionLevel: Int32) throws(WANOptError) -> CodecFactory {
        let encoder: DedupEncoder
        do { encoder = try DedupEncoder(store: store, averageChunkSize: averageChunkSize, compressionLevel: compressionLevel) } catch {
            throw WANOptError("dedup settings: \(error)")
        }
        let decoder = DedupDecoder(store: store)
        // Fresh copies of unused values: the store is shared by reference, the chunking state starts empty.
        return CodecFactory(name: "dedup (FastCDC \(averageChunkSize / 1024) KiB, zstd \(compressionLevel))", wireID: 1,
                            makeEncoder: { encoder }, makeDecoder: { decoder }, store: store)
    }
}

/// `mkdir -p`.
func makeDirectories(_ path: String) {
    var prefix = ""
    for part in path.split(separator: "/") {
        prefix += "/" + part
        _ = mkdir(prefix, 0o700)
    }
}

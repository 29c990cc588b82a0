import Foundation
import Glibc
import Testing
@testable import KilnImage

/// zstd through libzstd checked with the zstd tool; layers cached by their input listing.
@Suite struct ZstdAndLayerTests {
    func sampleBytes(_ count: Int, seed: UInt64) -> [UInt8] {
        var generator = SplitMix64(seed: seed)
        // Compressible but not trivial: words from a small alphabet.
        return (0..<count).map { _ in UInt8(ascii: "a") + UInt8(generator.next() % 8) }
    }

    @Test func roundTripAndTheZstdToolAgrees() throws {
        let input = sampleBytes(300_000, seed: 1)
        let compressed = try Zstd.compress(input, level: 19)
        #expect(compressed.count < input.count / 2)
        #expect(try Zstd.decompress(compressed) == input)
        #expect(try Zstd.compress(input, level: 19) == compressed, "deterministic")
        let tool = try runTool("zstd", ["-dc"], input: compressed)
        #expect(tool.status == 0, "\(tool.stderr)")
        #expect(tool.stdout == input)
        let info = try runTool("sh", ["-c", "cat > /tmp/.kiln-zstd-test-$$.zst && zstd -lv /tmp/.kiln-zstd-test-$$.zst; rm -f /tmp/.kiln-zstd-test-$$.zst"], input: compressed)
        #expect(info.text.contains("Check: XXH64"), "checksummed frame")
        #expect(info.text.contains("300000"), "content size recorded")
        #expect(try Zstd.decompress(try Zstd.compress([])) == [])
    }

    @Test func concatenatedFramesAndCorruptInput() throws {
        let a = sampleBytes(10_000, seed: 2), b = sampleBytes(20_000, seed: 3)
        let joined = try Zstd.compress(a, level: 3) + (try Zstd.compress(b, level: 19))
        #expect(try Zstd.decompress(joined) == a + b)
        let truncated = Array(joined.prefix(joined.count - 10))
        #expect(throws: ImageError.self) { try Zstd.decompress(truncated) }
        #expect(throws: ImageError.self) { try Zstd.decompress(Array("not zstd at all".utf8)) }
    }

    func layerEntries(_ dir: TemporaryDirectory) -> [CpioEntry] {
        [
            CpioEntry(path: "/lib/libbig.so", kind: .regular(.file(dir.path + "/src/libbig.so")), mode: 0o644),
            .symlink("/lib/libbig.so.1", target: "libbig.so"),
        ]
    }

    @Test func unchangedLayersAreReusedAndChangesMakeNewOnes() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        try dir.write("src/libbig.so", sampleBytes(200_000, seed: 4))
        let cache = try LayerCache(directory: dir.path + "/cache")
        let layer = ImageLayer(name: "libs", entries: layerEntries(dir))
        let first = try cache.build(layer, epoch: 1_700_000_000)
        #expect(!first.reused)
        #expect(first.sha256 == (try Hashing.sha256(file: first.path)).sha256)
        let modified = try #require(FileSystem.lstat(first.path)).st_mtim

        // A new cache object (a new build process) over the same inputs: reused, file untouched.
        let second = try LayerCache(directory: dir.path + "/cache").build(layer, epoch: 1_700_000_000)
        #expect(second.reused)
        #expect(second.key == first.key && second.sha256 == first.sha256 && second.path == first.path)
        #expect(try #require(FileSystem.lstat(first.path)).st_mtim.tv_nsec == modified.tv_nsec)

        // Changed content (same size), changed mode, changed epoch: each a new key.
        var bytes = try FileSystem.readFile(dir.path + "/src/libbig.so")
        bytes[100] ^= 0xff
        try FileSystem.writeFile(dir.path + "/src/libbig.so", bytes, sync: false)
        let changed = try cache.build(layer, epoch: 1_700_000_000)
        #expect(!changed.reused && changed.key != first.key)
        var chmodded = layer
        chmodded.entries[0].mode = 0o755
        #expect(try cache.key(for: chmodded, epoch: 1_700_000_000, level: 19) != changed.key)
        #expect(try cache.key(for: layer, epoch: 1_700_000_001, level: 19) != changed.key)
        #expect(try cache.key(for: layer, epoch: 1_700_000_000, level: 3) != changed.key)

        try cache.prune(keeping: [changed.key])
        #expect(FileSystem.lstat(first.path) == nil)
        #expect(FileSystem.lstat(changed.path) != nil)
    }

    /// A layer holding a file others may not read in the image (a private key) is 0600 in the cache, and so is an
    /// initramfs made from it; the cache directory and a secret output directory are not listable by others.
    @Test func secretsOnTheBuildHostAreOwnerOnly() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        func mode(_ path: String) throws -> mode_t { try #require(FileSystem.lstat(path)).st_mode & 0o7777 }
        try FileSystem.makeDirectories(dir.path + "/cache", mode: 0o755)
        let cache = try LayerCache(directory: dir.path + "/cache")
        #expect(try mode(dir.path + "/cache") == 0o700)
        let plain = try cache.build(ImageLayer(name: "config", entries: [.init(path: "/etc/a", kind: .regular(.bytes([1])), mode: 0o644)]), epoch: 1)
        let secret = try cache.build(ImageLayer(name: "config", entries: [
            .init(path: "/etc/a", kind: .regular(.bytes([1])), mode: 0o644),
            .init(path: "/etc/kiln/vpn/vpn0.json", kind: .regular(.bytes(Array("private".utf8))), mode: 0o600),
        ]), epoch: 1)
        #expect(!plain.secret && secret.secret)
        #expect(try mode(plain.path) == 0o644)
        #expect(try mode(secret.path) == 0o600)
        // A secret layer already cached with a wider mode is tightened when it is used.
        #expect(chmod(secret.path, 0o644) == 0)
        #expect(try LayerCache(directory: dir.path + "/cache").build(ImageLayer(name: "config", entries: [
            .init(path: "/etc/a", kind: .regular(.bytes([1])), mode: 0o644),
            .init(path: "/etc/kiln/vpn/vpn0.json", kind: .regular(.bytes(Array("private".utf8))), mode: 0o600),
        ]), epoch: 1).reused)
        #expect(try mode(secret.path) == 0o600)

        try AtomicOutput.replaceDirectory(at: dir.path + "/out/vpn", mode: 0o700) { tmp in
            try LayerCache.concatenate([plain, secret], to: tmp + "/initramfs.cpio.zst")
            try LayerCache.concatenate([plain], to: tmp + "/plain.cpio.zst")
        }
        #expect(try mode(dir.path + "/out/vpn") == 0o700)
        #expect(try mode(dir.path + "/out/vpn/initramfs.cpio.zst") == 0o600)
        #expect(try mode(dir.path + "/out/vpn/plain.cpio.zst") == 0o644)
    }

    /// The initramfs is the concatenation of the layers; `zstd -dc` decodes it as one stream, and each cpio
    /// segment in it lists with GNU cpio (which, unlike the kernel, stops at the first trailer).
    @Test func concatenatedLayersDecodeAsOneStream() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        try dir.write("src/libbig.so", sampleBytes(50_000, seed: 5))
        let cache = try LayerCache(directory: dir.path + "/cache")
        let layers = [
            ImageLayer(name: "base", entries: [.directory("/dev"), .characterDevice("/dev/console", major: 5, minor: 1)]),
            ImageLayer(name: "libs", entries: layerEntries(dir)),
            ImageLayer(name: "config", entries: [.file("/etc/kiln/config.json", bytes: Array("{}".utf8))]),
        ]
        let built = try layers.map { try cache.build($0, epoch: 1_700_000_000, level: $0.name == "config" ? 3 : 19) }
        let output = dir.path + "/initramfs.cpio.zst"
        let (sha256, size) = try LayerCache.concatenate(built, to: output)
        #expect(size == built.map(\.size).reduce(0, +))
        #expect(sha256 == (try Hashing.sha256(file: output)).sha256)

        let stream = try runTool("zstd", ["-dc", output])
        #expect(stream.status == 0, "\(stream.stderr)")
        let segments = splitAtTrailers(stream.stdout)
        #expect(segments.count == 3)
        var names = [String]()
        for segment in segments {
            let listing = try runTool("cpio", ["-it", "--quiet"], input: segment)
            #expect(listing.status == 0, "\(listing.stderr)")
            names += listing.text.split(separator: "\n").map(String.init)
        }
        #expect(names == ["dev", "dev/console", "lib", "lib/libbig.so", "lib/libbig.so.1", "etc", "etc/kiln", "etc/kiln/config.json"])
    }

    /// Splits a stream of newc archives after each `TRAILER!!!` record (header, name, padding).
    func splitAtTrailers(_ bytes: [UInt8]) -> [[UInt8]] {
        let marker = Array("TRAILER!!!\0".utf8)
        var segments = [[UInt8]]()
        var start = 0
        var index = 0
        while index + marker.count <= bytes.count {
            if bytes[index] == marker[0] && Array(bytes[index..<(index + marker.count)]) == marker {
                var end = index + marker.count
                while end % 4 != 0 { end += 1 }
                segments.append(Array(bytes[start..<end]))
                start = end
                index = end
            } else {
                index += 1
            }
        }
        return segments
    }
}

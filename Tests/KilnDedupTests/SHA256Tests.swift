import KilnTestSupport
import CKilnHash
import Foundation
import KilnDedup
import Testing

func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

/// The implementations this CPU can run; the portable one always.
let implementations = KilnSHA256.Implementation.allCases.filter { KilnSHA256(implementation: $0) != nil }

@Suite struct SHA256Tests {
    @Test func thisMachineHasSHANI() {
        // Both code paths must be exercised here; the build machine has the SHA extensions.
        let hasSHA = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?.contains(" sha_ni") ?? false
        #expect(implementations.contains(.shaNI) == hasSHA)
        #expect(KilnSHA256.Implementation.best == (hasSHA ? .shaNI : .portable))
    }

    /// FIPS 180-4 examples (NIST CSRC "SHA256.pdf", "SHA2_Additional.pdf").
    @Test(arguments: implementations) func fipsVectors(_ impl: KilnSHA256.Implementation) {
        let vectors: [([UInt8], String)] = [
            ([], "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
            (Array("abc".utf8), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
            (Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8),
             "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
            (Array("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu".utf8),
             "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"),
            ([UInt8](repeating: 0x61, count: 1_000_000), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
        ]
        for (message, expected) in vectors {
            var h = KilnSHA256(implementation: impl)!
            h.update(message)
            #expect(hex(h.finalize()) == expected, "\(impl) over \(message.count) bytes")
            // Fed in uneven pieces: same digest.
            var p = KilnSHA256(implementation: impl)!
            var i = 0, step = 1
            while i < message.count {
                let n = min(step, message.count - i)
                message.withUnsafeBytes { p.update(UnsafeRawBufferPointer(rebasing: $0[i..<(i + n)])) }
                i += n; step = step * 3 % 997 + 1
            }
            #expect(hex(p.finalize()) == expected, "\(impl) pieces over \(message.count) bytes")
        }
    }

    /// RFC 4231 §4 test cases 1–4, 6, 7 (5 is a truncated MAC).
    @Test(arguments: implementations) func rfc4231(_ impl: KilnSHA256.Implementation) {
        let cases: [([UInt8], [UInt8], String)] = [
            ([UInt8](repeating: 0x0b, count: 20), Array("Hi There".utf8),
             "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
            (Array("Jefe".utf8), Array("what do ya want for nothing?".utf8),
             "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
            ([UInt8](repeating: 0xaa, count: 20), [UInt8](repeating: 0xdd, count: 50),
             "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
            (Array(1...25), [UInt8](repeating: 0xcd, count: 50),
             "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
            ([UInt8](repeating: 0xaa, count: 131), Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8),
             "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
            ([UInt8](repeating: 0xaa, count: 131),
             Array("This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.".utf8),
             "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
        ]
        for (key, data, expected) in cases {
            var out = [UInt8](repeating: 0, count: 32)
            #expect(kiln_hmac_sha256_impl(impl.rawValue, key, key.count, data, data.count, &out) == 0)
            #expect(hex(out) == expected, "\(impl) key \(key.count) bytes")
            if impl == .best { #expect(hex(KilnSHA256.hmac(key: key, data: data)) == expected) }
        }
    }

    /// Random files of sizes around the block and padding boundaries and a few MB, against coreutils' sha256sum.
    @Test func matchesSha256sum() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-sha256-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var rng = SplitMix.seeded("matchesSha256sum", fixed: 0x7368_6132_3536)
        let sizes = [0, 1, 55, 56, 63, 64, 65, 119, 120, 127, 128, 1000, 4096, 65_537, 3_000_001]
        var files: [(URL, [UInt8])] = []
        for (i, size) in sizes.enumerated() {
            var data = [UInt8](repeating: 0, count: size)
            for j in stride(from: 0, to: size, by: 8) {
                let r = rng.next() as UInt64
                for k in 0..<min(8, size - j) { data[j + k] = UInt8(truncatingIfNeeded: r >> (8 * k)) }
            }
            let url = dir.appendingPathComponent("f\(i)")
            try Data(data).write(to: url)
            files.append((url, data))
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        p.arguments = files.map { $0.0.path }
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        let lines = output.split(separator: "\n")
        #expect(lines.count == files.count)
        for (line, (url, data)) in zip(lines, files) {
            let expected = String(line.prefix(64))
            #expect(line.hasSuffix(url.path))
            for impl in implementations {
                var h = KilnSHA256(implementation: impl)!
                h.update(data)
                #expect(hex(h.finalize()) == expected, "\(impl), \(data.count) bytes")
            }
            #expect(ChunkID(hashing: data).description == expected)
            #expect(hex(KilnSHA256.digest(data)) == expected)
        }
    }

    @Test func chunkIDDigestRoundTrip() {
        let id = ChunkID(hashing: Array("abc".utf8))
        #expect(id.description == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let back = id.digest.withUnsafeBytes { ChunkID(digest: $0) }
        #expect(back == id)
        #expect(ChunkID(hashing: Array("abd".utf8)) != id)
    }
}

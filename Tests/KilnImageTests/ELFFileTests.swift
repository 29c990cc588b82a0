import Foundation
import Glibc
import Testing
@testable import KilnImage

/// The ELF parser against the host's real binaries (checked with readelf) and against corrupted copies.
@Suite struct ELFFileTests {
    /// `readelf -d` lines of one tag, e.g. `(NEEDED)  Shared library: [libc.so.6]` → `libc.so.6`.
    func readelfValues(_ path: String, tag: String) throws -> [String] {
        let output = try runTool("readelf", ["-dW", path]).text
        return output.split(separator: "\n").filter { $0.contains("(\(tag))") }.compactMap { line in
            guard let open = line.firstIndex(of: "["), let close = line.lastIndex(of: "]") else { return nil }
            return String(line[line.index(after: open)..<close])
        }
    }

    @Test func parsesAnExecutable() throws {
        let path = "/usr/bin/ls"
        let elf = try ELFFile(bytes: try FileSystem.readFile(path), path: path)
        #expect(elf.machine == ELFFile.machineX86_64)
        #expect(elf.type == .sharedObject || elf.type == .executable)
        #expect(elf.interpreter == "/lib64/ld-linux-x86-64.so.2")
        #expect(elf.needed == (try readelfValues(path, tag: "NEEDED")))
        #expect(elf.needed.contains("libc.so.6"))
        #expect(elf.section(named: ".text") != nil)
    }

    @Test func parsesASharedLibrary() throws {
        let path = "/lib/x86_64-linux-gnu/libc.so.6"
        let elf = try ELFFile(bytes: try FileSystem.readFile(path), path: path)
        #expect(elf.type == .sharedObject)
        #expect(elf.soname == "libc.so.6")
        #expect(elf.needed == (try readelfValues(path, tag: "NEEDED")))
        #expect(elf.interpreter != nil)  // libc is also runnable
    }

    @Test func readsRunpathAndRpath() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        try dir.write("lib.c", "int answer(void) { return 42; }\n")
        for (name, flag) in [("runpath", "--enable-new-dtags"), ("rpath", "--disable-new-dtags")] {
            let out = dir.path + "/lib\(name).so"
            let result = try runTool("clang", ["-shared", "-fPIC", "-o", out, dir.path + "/lib.c",
                                               "-Wl,-soname,lib\(name).so.7", "-Wl,\(flag)", "-Wl,-rpath,$ORIGIN/../lib:/opt/x"])
            #expect(result.status == 0, "\(result.stderr)")
            let elf = try ELFFile(bytes: try FileSystem.readFile(out), path: out)
            #expect(elf.soname == "lib\(name).so.7")
            let expected = ["$ORIGIN/../lib", "/opt/x"]
            #expect(name == "runpath" ? elf.runpath == expected : elf.rpath == expected)
            #expect(try readelfValues(out, tag: name.uppercased()) == ["$ORIGIN/../lib:/opt/x"])
        }
    }

    @Test func rejectsWhatIsNotELF64LittleEndian() {
        #expect(throws: ImageError.self) { try ELFFile(bytes: Array("#!/bin/sh\necho hi\n".utf8)) }
        #expect(throws: ImageError.self) { try ELFFile(bytes: []) }
        var header = [UInt8](repeating: 0, count: 64)
        header[0...3] = [0x7f, 0x45, 0x4c, 0x46]
        header[4] = 1  // ELFCLASS32
        header[5] = 1
        #expect(throws: ImageError.malformedELF(path: "<memory>", offset: 4, reason: "not a 64-bit ELF file (class 1)")) {
            try ELFFile(bytes: header)
        }
    }

    @Test func truncatedFilesThrow() throws {
        let bytes = try FileSystem.readFile("/usr/bin/ls")
        for length in [63, 64, 100, 500, 4096] {
            #expect(throws: ImageError.self) { try ELFFile(bytes: Array(bytes.prefix(length))) }
        }
    }

    /// Thousands of randomly corrupted binaries: each parse returns or throws, never traps. The header, program
    /// headers and dynamic section are where corruption reaches the parser, so mutations aim there.
    @Test func randomMutationsNeverCrash() throws {
        let original = try FileSystem.readFile("/usr/bin/ls")
        let clean = try ELFFile(bytes: original)
        var generator = SplitMix64(seed: 0x6b696c6e)
        var threw = 0
        for iteration in 0..<3000 {
            var bytes = original
            let flips = 1 + Int(generator.next() % 8)
            for _ in 0..<flips {
                let region = generator.next() % 3
                let offset: Int
                switch region {
                case 0: offset = Int(generator.next() % 64)
                case 1: offset = 64 + Int(generator.next() % 1024)
                default: offset = Int(generator.next() % UInt64(bytes.count))
                }
                bytes[offset] = UInt8(truncatingIfNeeded: generator.next())
            }
            if iteration % 10 == 0 { bytes = Array(bytes.prefix(Int(generator.next() % UInt64(bytes.count)))) }
            do {
                _ = try ELFFile(bytes: bytes)
            } catch is ImageError {
                threw += 1
            }
        }
        #expect(threw > 300, "corruption is detected, not ignored (\(threw) of 3000 threw)")
        #expect(clean.needed.isEmpty == false)
    }
}

/// A small deterministic PRNG for reproducible fuzzing.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

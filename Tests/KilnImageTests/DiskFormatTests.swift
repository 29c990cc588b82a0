import Foundation
import Testing
@testable import KilnImage

/// A minimal PE32+ EFI application: DOS header, PE signature, COFF header, optional header with 16 data
/// directories, one `.text` section. `headerSize` sets SizeOfHeaders (and where `.text` starts).
func minimalPE(headerSize: Int = 0x400) -> [UInt8] {
    var pe = [UInt8](repeating: 0, count: headerSize + 0x200)
    pe[0] = 0x4D; pe[1] = 0x5A
    let peOffset = 0x80
    pe.setLE32(0x3C, UInt32(peOffset))
    pe.replaceSubrange(peOffset..<peOffset + 4, with: [0x50, 0x45, 0, 0])
    let coff = peOffset + 4
    pe.setLE16(coff, 0x8664)
    pe.setLE16(coff + 2, 1)
    pe.setLE16(coff + 16, 240)
    pe.setLE16(coff + 18, 0x0206)
    let opt = coff + 20
    pe.setLE16(opt, 0x20B)
    pe.setLE32(opt + 4, 0x200)  // SizeOfCode
    pe.setLE32(opt + 16, 0x1000)  // AddressOfEntryPoint
    pe.setLE32(opt + 32, 0x1000)  // SectionAlignment
    pe.setLE32(opt + 36, 0x200)  // FileAlignment
    pe.setLE32(opt + 56, 0x2000)  // SizeOfImage
    pe.setLE32(opt + 60, UInt32(headerSize))  // SizeOfHeaders
    pe.setLE16(opt + 68, 10)  // EFI application
    pe.setLE32(opt + 108, 16)  // NumberOfRvaAndSizes
    let section = opt + 240
    pe.replaceSubrange(section..<section + 5, with: Array(".text".utf8))
    pe.setLE32(section + 8, 0x10)
    pe.setLE32(section + 12, 0x1000)
    pe.setLE32(section + 16, 0x200)
    pe.setLE32(section + 20, UInt32(headerSize))
    pe.setLE32(section + 36, 0x6000_0020)
    pe[headerSize] = 0xC3
    return pe
}

@Suite struct UnifiedKernelImageTests {
    @Test func objdumpListsTheAddedSections() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let kernel = (0..<300_001).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let initrd = [UInt8](repeating: 0xAB, count: 70_000)
        let sections = UnifiedKernelImage.sections(osRelease: "ID=kiln\n", cmdline: "console=ttyS0", kernel: kernel, initrd: initrd)
        let image = try UnifiedKernelImage.build(stub: minimalPE(), sections: sections, path: "stub")
        try dir.write("uki.efi", image)
        let dump = try runTool("objdump", ["-h", dir.path + "/uki.efi"])
        #expect(dump.status == 0, "\(dump.stderr)")
        #expect(dump.text.contains("pei-x86-64"), "\(dump.text)")
        // objdump -h: "Idx Name Size VMA LMA File-off Algn"
        var found: [String: (size: Int, vma: UInt64, offset: Int)] = [:]
        for line in dump.text.split(separator: "\n") {
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            guard f.count >= 6, Int(f[0]) != nil else { continue }
            found[String(f[1])] = (Int(f[2], radix: 16) ?? -1, UInt64(f[3], radix: 16) ?? 0, Int(f[5], radix: 16) ?? -1)
        }
        #expect(found[".osrel"]?.size == 8)
        #expect(found[".cmdline"]?.size == 14)
        #expect(found[".initrd"]?.size == 70_000)
        #expect(found[".linux"]?.size == 300_001)
        #expect(found[".text"]?.size == 0x10)
        // Data is where the headers say, at FileAlignment; addresses ascend at SectionAlignment, .linux last.
        for name in [".osrel", ".cmdline", ".initrd", ".linux"] {
            let s = try #require(found[name])
            #expect(s.offset % 0x200 == 0 && s.vma % 0x1000 == 0, "\(name) \(s)")
            let data = sections.first { $0.name == name }!.data
            #expect(Array(image[s.offset..<s.offset + data.count]) == data, "\(name) contents")
        }
        #expect(found[".osrel"]!.vma == 0x2000, "the first added section follows .text at the next SectionAlignment")
        #expect(found[".linux"]!.vma > found[".initrd"]!.vma && found[".initrd"]!.vma > found[".cmdline"]!.vma)
        // SizeOfImage covers the last section; checksum is zero; five sections.
        let opt = 0x80 + 24
        #expect(image.le16(0x80 + 6) == 5)
        #expect(Int(image.le32(opt + 56)) == UnifiedKernelImage.align(Int(found[".linux"]!.vma & 0xFFFF_FFFF) + 300_001, 0x1000))
        #expect(image.le32(opt + 64) == 0)
    }

    @Test func headerWithoutRoomIsRejected() throws {
        // Headers end at 0x200: the table (at 0x198 + 40) leaves room for 1 more header, not 4.
        let stub = minimalPE(headerSize: 0x200)
        #expect(throws: ImageError.self) {
            try UnifiedKernelImage.build(stub: stub, sections: UnifiedKernelImage.sections(osRelease: "", cmdline: "", kernel: [1], initrd: [2]), path: "stub")
        }
        do {
            _ = try UnifiedKernelImage.build(stub: stub, sections: UnifiedKernelImage.sections(osRelease: "", cmdline: "", kernel: [1], initrd: [2]), path: "stub")
        } catch {
            #expect("\(error)".contains("no room for 4 more section headers"), "\(error)")
        }
        #expect(throws: ImageError.self) { try UnifiedKernelImage.build(stub: [0x4D, 0x5A] + [UInt8](repeating: 0, count: 62), sections: [], path: "x") }
    }
}

@Suite struct GPTDiskTests {
    @Test func crcMatchesTheStandardCheckValue() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
    }

    @Test func sgdiskReadsTheLayoutBack() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let partition = (0..<(3 * 1024 * 1024)).map { UInt8(truncatingIfNeeded: $0 >> 9) }
        let gpt = GPTDisk(seed: "lockhash/router")
        let disk = gpt.image(partition: partition)
        #expect(disk.count == 5 * 1024 * 1024)
        #expect(gpt.image(partition: partition) == disk)
        #expect(GPTDisk(seed: "lockhash/other").diskGUID != gpt.diskGUID)
        try dir.write("disk.raw", disk)
        // -v verifies both headers, both CRCs and the entry arrays; -p prints the table.
        let verify = try runTool("sgdisk", ["-v", dir.path + "/disk.raw"])
        #expect(verify.status == 0 && verify.text.contains("No problems found"), "\(verify.text)\(verify.stderr)")
        let print = try runTool("sgdisk", ["-p", dir.path + "/disk.raw"])
        #expect(print.text.contains("Disk identifier (GUID): \(GPTDisk.guidText(gpt.diskGUID))"), "\(print.text)")
        #expect(print.text.contains("   1            2048            8191   3.0 MiB     EF00  EFI System Partition"), "\(print.text)")
        let info = try runTool("sgdisk", ["-i", "1", dir.path + "/disk.raw"])
        #expect(info.text.contains("Partition unique GUID: \(GPTDisk.guidText(gpt.partitionGUID))"), "\(info.text)")
        #expect(info.text.contains("C12A7328-F81F-11D2-BA4B-00A0C93EC93B"), "\(info.text)")
        #expect(Array(disk[1024 * 1024..<4 * 1024 * 1024]) == partition)
        // A flipped bit in the primary entry array is caught by the header's CRC.
        var broken = disk
        broken[2 * 512 + 20] ^= 1
        try dir.write("broken.raw", broken)
        let bad = try runTool("sgdisk", ["-v", dir.path + "/broken.raw"])
        #expect((bad.text + bad.stderr).contains("CRC"), "\(bad.text)\(bad.stderr)")
    }

    /// xorriso records each file's owner in Rock Ridge: the ISO built by an unprivileged user (its scratch files are
    /// that user's, here uid 1001 made by chown) must still hold root's files, as the root build does.
    @Test func isoFilesBelongToRootWhoeverBuilds() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let scratch = dir.path + "/s"
        try FileSystem.makeDirectories(scratch + "/iso-root")
        #expect(chown(scratch + "/iso-root", 1001, 1001) == 0)
        let uki = (0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        try dir.write("esp.fat", try DiskFormats.espImage(uki: uki, scratch: scratch, seed: "seed", epoch: 1_700_000_000))
        try DiskFormats.iso(esp: dir.path + "/esp.fat", output: dir.path + "/disk.iso", scratch: scratch, seed: "seed", epoch: 1_700_000_000)
        let listing = try runTool("xorriso", ["-no_rc", "-indev", dir.path + "/disk.iso", "-lsdl", "/"])
        let fields = listing.text.split(separator: " ", omittingEmptySubsequences: true)
        #expect(fields.count > 4 && fields[2] == "0" && fields[3] == "0", "\(listing.text)")
    }

    @Test func espHoldsTheImageAndIsReproducible() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let uki = (0..<1_500_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 11) }
        var images: [[UInt8]] = []
        for run in 0..<2 {
            let scratch = dir.path + "/s\(run)"
            try FileSystem.makeDirectories(scratch)
            images.append(try DiskFormats.espImage(uki: uki, scratch: scratch, seed: "seed", epoch: 1_700_000_000))
            if run == 0 { sleep(1) }
        }
        #expect(images[0] == images[1])
        try dir.write("esp.fat", images[0])
        let copy = try runTool("mcopy", ["-n", "-i", dir.path + "/esp.fat", "::/EFI/BOOT/BOOTX64.EFI", dir.path + "/back.efi"])
        #expect(copy.status == 0, "\(copy.stderr)")
        #expect(try FileSystem.readFile(dir.path + "/back.efi") == uki)
    }
}

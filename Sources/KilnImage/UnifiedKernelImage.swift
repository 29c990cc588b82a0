/// A unified kernel image: the UEFI stub from Debian's systemd-boot-efi with the os-release, the kernel command
/// line, the kernel and the initramfs added as PE sections, so one EFI executable boots the appliance.
///
/// The stub's headers are rewritten in place (PE/COFF, Microsoft PE Format §3–§4): one section header per
/// added section in the slack after the existing table, raw data at FileAlignment past the end of the file,
/// virtual addresses past the last section at SectionAlignment, SizeOfImage and NumberOfSections updated, and
/// the checksum cleared (UEFI does not check it). `.linux` goes last: the stub hands the kernel over in place
/// and the kernel may use memory past its section while it decompresses itself.
public enum UnifiedKernelImage {
    /// The Debian package holding the stub, and the stub's path inside it.
    public static let stubPackage = "systemd-boot-efi"
    public static let stubPath = "usr/lib/systemd/boot/efi/linuxx64.efi.stub"

    /// One section to append: its name (at most 8 bytes) and contents.
    public struct Section: Equatable {
        public var name: String
        public var data: [UInt8]
        public init(name: String, data: [UInt8]) { self.name = name; self.data = data }
    }

    /// The sections in the order the image holds them.
    public static func sections(osRelease: String, cmdline: String, kernel: [UInt8], initrd: [UInt8]) -> [Section] {
        [Section(name: ".osrel", data: Array(osRelease.utf8)),
         Section(name: ".cmdline", data: Array(cmdline.utf8) + [0]),
         Section(name: ".initrd", data: initrd),
         Section(name: ".linux", data: kernel)]
    }

    /// An os-release naming the appliance, shown by boot menus and read by the stub.
    public static func osRelease(name: String, kernelRelease: String) -> String {
        "NAME=\"Kiln\"\nID=kiln\nPRETTY_NAME=\"Kiln appliance \(name)\"\nVARIANT_ID=\(name)\nVERSION_ID=\"\(kernelRelease)\"\n"
    }

    /// `stub` with `sections` appended. `path` only names the stub in errors.
    public static func build(stub: [UInt8], sections: [Section], path: String) throws -> [UInt8] {
        func fail(_ offset: Int, _ reason: String) -> ImageError { .malformedPE(path: path, offset: offset, reason: reason) }
        var pe = stub
        guard pe.count >= 0x40, pe[0] == 0x4D, pe[1] == 0x5A else { throw fail(0, "no MZ header") }
        let peOffset = Int(pe.le32(0x3C))
        guard peOffset + 24 <= pe.count, pe[peOffset..<peOffset + 4].elementsEqual([0x50, 0x45, 0, 0]) else {
            throw fail(peOffset, "no PE signature")
        }
        let coff = peOffset + 4
        let sectionCount = Int(pe.le16(coff + 2))
        let optionalSize = Int(pe.le16(coff + 16))
        let optional = coff + 20
        guard optional + optionalSize <= pe.count, optionalSize >= 112 else { throw fail(optional, "optional header truncated") }
        guard pe.le16(optional) == 0x20B else { throw fail(optional, "not PE32+ (magic \(pe.le16(optional)))") }
        let sectionAlignment = Int(pe.le32(optional + 32))
        let fileAlignment = Int(pe.le32(optional + 36))
        let sizeOfHeaders = Int(pe.le32(optional + 60))
        guard sectionAlignment > 0, fileAlignment > 0, sectionAlignment & (sectionAlignment - 1) == 0,
              fileAlignment & (fileAlignment - 1) == 0
        else { throw fail(optional + 32, "section alignment \(sectionAlignment) or file alignment \(fileAlignment) is not a power of two") }

        let table = optional + optionalSize
        let tableEnd = table + 40 * sectionCount
        var virtualEnd = 0
        var firstRaw = sizeOfHeaders
        var rawEnd = 0
        for i in 0..<sectionCount {
            let h = table + 40 * i
            guard h + 40 <= pe.count else { throw fail(h, "section header \(i) truncated") }
            let name = String(decoding: pe[h..<h + 8].prefix { $0 != 0 }, as: UTF8.self)
            if sections.contains(where: { $0.name == name }) { throw fail(h, "the stub already has a \(name) section") }
            let virtualSize = Int(pe.le32(h + 8)), virtualAddress = Int(pe.le32(h + 12))
            let rawSize = Int(pe.le32(h + 16)), rawPointer = Int(pe.le32(h + 20))
            virtualEnd = max(virtualEnd, virtualAddress + max(virtualSize, rawSize))
            if rawSize > 0 {
                firstRaw = min(firstRaw, rawPointer)
                rawEnd = max(rawEnd, rawPointer + rawSize)
            }
        }
        let newTableEnd = tableEnd + 40 * sections.count
        guard newTableEnd <= min(sizeOfHeaders, firstRaw) else {
            throw fail(tableEnd, "no room for \(sections.count) more section headers: the table would end at \(newTableEnd), "
                       + "past the headers' end at \(min(sizeOfHeaders, firstRaw))")
        }
        guard pe[tableEnd..<newTableEnd].allSatisfy({ $0 == 0 }) else {
            throw fail(tableEnd, "the space after the section table is not empty")
        }

        var fileOffset = align(max(pe.count, rawEnd), fileAlignment)
        var address = align(virtualEnd, sectionAlignment)
        pe += [UInt8](repeating: 0, count: fileOffset - pe.count)
        for (i, section) in sections.enumerated() {
            let nameBytes = Array(section.name.utf8)
            guard nameBytes.count <= 8 else { throw fail(0, "section name \(section.name) is longer than 8 bytes") }
            let rawSize = align(section.data.count, fileAlignment)
            let h = tableEnd + 40 * i
            for (j, b) in nameBytes.enumerated() { pe[h + j] = b }
            pe.setLE32(h + 8, UInt32(section.data.count))
            pe.setLE32(h + 12, UInt32(address))
            pe.setLE32(h + 16, UInt32(rawSize))
            pe.setLE32(h + 20, UInt32(fileOffset))
            // IMAGE_SCN_CNT_INITIALIZED_DATA | IMAGE_SCN_MEM_READ
            pe.setLE32(h + 36, 0x4000_0040)
            pe += section.data
            pe += [UInt8](repeating: 0, count: rawSize - section.data.count)
            fileOffset += rawSize
            address = align(address + section.data.count, sectionAlignment)
        }
        guard address <= Int(UInt32.max) else { throw fail(0, "the image would be larger than 4 GiB") }
        pe.setLE16(coff + 2, UInt16(sectionCount + sections.count))
        pe.setLE32(optional + 56, UInt32(address))  // SizeOfImage
        pe.setLE32(optional + 64, 0)  // CheckSum
        return pe
    }

    static func align(_ value: Int, _ alignment: Int) -> Int { (value + alignment - 1) / alignment * alignment }
}

extension Array where Element == UInt8 {
    func le16(_ at: Int) -> UInt16 { UInt16(self[at]) | UInt16(self[at + 1]) << 8 }
    func le32(_ at: Int) -> UInt32 { UInt32(le16(at)) | UInt32(le16(at + 2)) << 16 }
    mutating func setLE16(_ at: Int, _ value: UInt16) {
        self[at] = UInt8(value & 0xFF); self[at + 1] = UInt8(value >> 8)
    }
    mutating func setLE32(_ at: Int, _ value: UInt32) {
        setLE16(at, UInt16(value & 0xFFFF)); setLE16(at + 2, UInt16(value >> 16))
    }
    mutating func setLE64(_ at: Int, _ value: UInt64) {
        setLE32(at, UInt32(value & 0xFFFF_FFFF)); setLE32(at + 4, UInt32(value >> 32))
    }
}

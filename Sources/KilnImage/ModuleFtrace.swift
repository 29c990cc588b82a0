/// ftrace's call sites in an x86-64 kernel module. Each traceable function starts with `call __fentry__`, and the
/// module's `__mcount_loc` section lists those calls. On every load the kernel checks each one against the
/// module's symbols (in 6.1 a linear scan of the symbol table per call site: for nf_tables.ko, 495 sites × a few
/// thousand symbols) and rewrites it to a 5-byte NOP. Measured under QEMU with instruction counting, that was
/// 26 of the 61 ms the router's 34 modules took to load.
///
/// `withoutCallSites` makes that rewrite once, at build time: each listed call becomes the NOP ftrace would write,
/// the call's relocation becomes R_X86_64_NONE (which the module loader skips), and `__mcount_loc` loses SHF_ALLOC,
/// so the loader neither keeps it nor applies its relocations and ftrace finds no call sites. What is lost: ftrace
/// cannot trace this module's functions (`kernel.moduleFtrace: keep` in the base keeps them traceable).
enum ModuleFtrace {
    /// `nopl 0x0(%rax,%rax,1)`: the NOP the kernel writes over `call __fentry__`.
    static let nop: [UInt8] = [0x0f, 0x1f, 0x44, 0x00, 0x00]
    static let callSiteSection = "__mcount_loc"
    static let shfAlloc: UInt64 = 0x2
    static let shtRela: UInt32 = 4
    static let relocationNone: UInt64 = 0
    static let relocation64: UInt64 = 1

    struct Result: Equatable {
        var bytes: [UInt8]
        /// Call sites turned into NOPs (those already NOPs count too).
        var sites: Int
    }

    /// The module with its ftrace call sites resolved. Modules for other machines, and modules without call sites,
    /// come back unchanged. A call site that is neither `call __fentry__` (with its relocation) nor the NOP is an
    /// error naming the module, the section and the offset: the module is not what this rewrite understands.
    static func withoutCallSites(_ bytes: [UInt8], module: String) throws(ImageError) -> Result {
        let elf = try ELFFile(bytes: bytes, path: module)
        if ModuleSignature.isSigned(bytes) {
            throw ImageError.malformedELF(path: module, offset: bytes.count - ModuleSignature.marker.count,
                                          reason: "the module is signed: editing its call sites would break the signature (strip it first)")
        }
        guard elf.type == .relocatable, elf.machine == ELFFile.machineX86_64,
              let listIndex = elf.sections.firstIndex(where: { $0.name == callSiteSection && $0.flags & shfAlloc != 0 })
        else { return Result(bytes: bytes, sites: 0) }
        var out = bytes
        var editor = Editor(elf: elf, reader: ELFReader(bytes: bytes, path: module))
        let list = elf.sections[listIndex]
        guard let listRelocations = elf.sections.first(where: { $0.type == shtRela && $0.info == listIndex }) else {
            throw editor.reader.error(list.headerOffset, "\(callSiteSection) has no relocation section")
        }
        var sites = 0
        for entry in try editor.relocations(listRelocations) {
            guard entry.type == relocation64 else {
                throw editor.reader.error(entry.fileOffset, "\(callSiteSection) relocation of type \(entry.type), expected R_X86_64_64")
            }
            let symbol = try editor.symbol(entry.symbol, table: listRelocations.link)
            guard symbol.section > 0, symbol.section < elf.sections.count else {
                throw editor.reader.error(entry.fileOffset, "call site in section \(symbol.section), which the module does not have")
            }
            let target = elf.sections[symbol.section]
            let (site, overflow) = Int(truncatingIfNeeded: symbol.value).addingReportingOverflow(Int(entry.addend))
            guard !overflow, site >= 0, site + nop.count <= target.size else {
                throw editor.reader.error(target.offset, "call site \(target.name)+\(site) lies outside the section (\(target.size) bytes)")
            }
            let at = target.offset + site
            sites += 1
            if out[at..<(at + nop.count)].elementsEqual(nop) { continue }
            guard out[at] == 0xe8, let call = try editor.relocation(in: symbol.section, at: site + 1),
                  try editor.symbol(call.symbol, table: call.table).name == "__fentry__" else {
                throw editor.reader.error(at, "\(target.name)+\(site) is not a call to __fentry__")
            }
            // r_info keeps the symbol and takes type R_X86_64_NONE; the bytes become the NOP.
            write(call.symbol << 32 | relocationNone, into: &out, at: call.fileOffset + 8)
            out.replaceSubrange(at..<(at + nop.count), with: nop)
        }
        write(list.flags & ~shfAlloc, into: &out, at: list.headerOffset + 8)
        return Result(bytes: out, sites: sites)
    }

    private static func write(_ value: UInt64, into bytes: inout [UInt8], at offset: Int) {
        for index in 0..<8 { bytes[offset + index] = UInt8(truncatingIfNeeded: value >> (8 * index)) }
    }

    /// Bounds-checked reads of relocations and symbols; relocations of a patched section are indexed by offset
    /// the first time they are asked for.
    private struct Editor {
        struct Relocation { var fileOffset: Int; var offset: UInt64; var symbol: UInt64; var type: UInt64; var addend: Int64; var table: Int }
        struct Symbol { var name: String; var section: Int; var value: UInt64 }
        let elf: ELFFile
        let reader: ELFReader
        private var byOffset: [Int: [UInt64: Relocation]] = [:]

        init(elf: ELFFile, reader: ELFReader) { self.elf = elf; self.reader = reader }

        func relocations(_ section: ELFFile.Section) throws(ImageError) -> [Relocation] {
            guard section.size % 24 == 0 else { throw reader.error(section.headerOffset, "relocation section \(section.name) of \(section.size) bytes") }
            return try (0..<(section.size / 24)).map { (index: Int) throws(ImageError) -> Relocation in
                let at = section.offset + index * 24
                let info = try reader.u64(at + 8)
                return Relocation(fileOffset: at, offset: try reader.u64(at), symbol: info >> 32, type: info & 0xffff_ffff,
                                  addend: Int64(bitPattern: try reader.u64(at + 16)), table: section.link)
            }
        }

        /// The relocation patching `offset` in section `target`, if any.
        mutating func relocation(in target: Int, at offset: Int) throws(ImageError) -> Relocation? {
            if byOffset[target] == nil {
                var index: [UInt64: Relocation] = [:]
                for section in elf.sections where section.type == ModuleFtrace.shtRela && section.info == target {
                    for r in try relocations(section) { index[r.offset] = r }
                }
                byOffset[target] = index
            }
            return byOffset[target]?[UInt64(offset)]
        }

        func symbol(_ index: UInt64, table: Int) throws(ImageError) -> Symbol {
            guard table < elf.sections.count, elf.sections[table].link < elf.sections.count else {
                throw reader.error(0, "symbol table \(table) out of range")
            }
            let symbols = elf.sections[table], names = elf.sections[symbols.link]
            guard index < UInt64(symbols.size / 24) else { throw reader.error(symbols.offset, "symbol \(index) out of range") }
            let at = symbols.offset + Int(index) * 24
            let nameOffset = Int(try reader.u32(at))
            guard nameOffset < names.size else { throw reader.error(at, "symbol name out of range") }
            return Symbol(name: try reader.cString(names.offset + nameOffset, limit: names.offset + names.size),
                          section: Int(try reader.u16(at + 6)), value: try reader.u64(at + 8))
        }
    }
}

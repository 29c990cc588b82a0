import Testing
@testable import KilnImage

/// Build-time resolution of ftrace call sites, on a module laid out the way the kernel's build leaves one:
/// functions starting with `call __fentry__` (R_X86_64_PLT32), and `__mcount_loc` listing those calls through
/// R_X86_64_64 relocations against the `.text` section symbol.
@Suite struct ModuleFtraceTests {
    /// Two functions, at 0 and 8, each starting with a call to __fentry__.
    static let callingText: [UInt8] = [0xe8, 0, 0, 0, 0, 0x55, 0xc3, 0x90, 0xe8, 0, 0, 0, 0, 0xc3]

    struct Relocation { var offset: UInt64; var symbol: UInt64; var type: UInt64; var addend: Int64 }

    /// A relocatable ELF64 for `machine`: .text, .rela.text, __mcount_loc, .rela__mcount_loc, .symtab, .strtab, .shstrtab.
    static func module(text: [UInt8] = callingText, textRelocations: [Relocation]? = nil, sites: [Int64] = [0, 8],
                       fentry: String = "__fentry__", machine: UInt16 = 62) -> [UInt8] {
        func le(_ value: UInt64, _ count: Int) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }
        func rela(_ r: [Relocation]) -> [UInt8] {
            r.flatMap { le($0.offset, 8) + le($0.symbol << 32 | $0.type, 8) + le(UInt64(bitPattern: $0.addend), 8) }
        }
        let calls = textRelocations ?? sites.map { Relocation(offset: UInt64($0 + 1), symbol: 2, type: 4, addend: -4) }
        let strtab = Array("\0\(fentry)\0".utf8)
        let symtab = [UInt8](repeating: 0, count: 24)
            + le(0, 4) + [0x03, 0] + le(1, 2) + le(0, 8) + le(0, 8)       // STT_SECTION for .text
            + le(1, 4) + [0x10, 0] + le(0, 2) + le(0, 8) + le(0, 8)       // __fentry__, global, undefined
        let names = ["", ".text", ".rela.text", "__mcount_loc", ".rela__mcount_loc", ".symtab", ".strtab", ".shstrtab"]
        var shstrtab: [UInt8] = [], nameOffsets: [Int] = []
        for name in names { nameOffsets.append(shstrtab.count); shstrtab += Array(name.utf8) + [0] }
        // (type, flags, contents, link, info)
        let sections: [(UInt32, UInt64, [UInt8], UInt32, UInt32)] = [
            (0, 0, [], 0, 0),
            (1, 0x6, text, 0, 0),
            (4, 0x40, rela(calls), 5, 1),
            (1, 0x2, [UInt8](repeating: 0, count: 8 * sites.count), 0, 0),
            (4, 0x40, rela(sites.enumerated().map { Relocation(offset: UInt64($0.offset * 8), symbol: 1, type: 1, addend: $0.element) }), 5, 3),
            (2, 0, symtab, 6, 1),
            (3, 0, strtab, 0, 0),
            (3, 0, shstrtab, 0, 0),
        ]
        var body: [UInt8] = [], offsets: [Int] = []
        for s in sections {
            while body.count % 8 != 0 { body.append(0) }
            offsets.append(64 + body.count)
            body += s.2
        }
        while body.count % 8 != 0 { body.append(0) }
        let sectionHeaders = 64 + body.count
        var out: [UInt8] = [0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0] + [UInt8](repeating: 0, count: 8)
        out += le(1, 2) + le(UInt64(machine), 2) + le(1, 4) + le(0, 8) + le(0, 8) + le(UInt64(sectionHeaders), 8)
        out += le(0, 4) + le(64, 2) + le(0, 2) + le(0, 2) + le(64, 2) + le(UInt64(sections.count), 2) + le(7, 2)
        out += body
        for (index, s) in sections.enumerated() {
            out += le(UInt64(nameOffsets[index]), 4) + le(UInt64(s.0), 4) + le(s.1, 8) + le(0, 8)
            out += le(UInt64(index == 0 ? 0 : offsets[index]), 8) + le(UInt64(s.2.count), 8)
            out += le(UInt64(s.3), 4) + le(UInt64(s.4), 4) + le(8, 8) + le(s.0 == 4 || s.0 == 2 ? 24 : 0, 8)
        }
        return out
    }

    @Test func callSitesBecomeNOPsAndTheListIsNoLongerLoaded() throws {
        let input = Self.module()
        let result = try ModuleFtrace.withoutCallSites(input, module: "nf_tables.ko")
        #expect(result.sites == 2)
        let elf = try ELFFile(bytes: result.bytes)
        let text = try #require(elf.section(named: ".text"))
        #expect(Array(result.bytes[text.offset..<(text.offset + text.size)])
                == ModuleFtrace.nop + [0x55, 0xc3, 0x90] + ModuleFtrace.nop + [0xc3])
        // Both __fentry__ relocations are now R_X86_64_NONE and keep their symbol; nothing else moved.
        let rela = try #require(elf.section(named: ".rela.text"))
        for entry in 0..<2 {
            let info = result.bytes[(rela.offset + entry * 24 + 8)..<(rela.offset + entry * 24 + 16)]
            #expect(Array(info) == [0, 0, 0, 0, 2, 0, 0, 0])
        }
        #expect(try #require(elf.section(named: "__mcount_loc")).flags & ModuleFtrace.shfAlloc == 0)
        let changed = zip(input, result.bytes).enumerated().filter { $0.element.0 != $0.element.1 }.map(\.offset)
        #expect(changed.count <= 2 * 5 + 2 * 1 + 1, "only the calls, the relocation types and the flag change: \(changed)")
        #expect(result.bytes.count == input.count)
    }

    @Test func runningTwiceChangesNothingMore() throws {
        let once = try ModuleFtrace.withoutCallSites(Self.module(), module: "x.ko")
        let twice = try ModuleFtrace.withoutCallSites(once.bytes, module: "x.ko")
        #expect(twice == ModuleFtrace.Result(bytes: once.bytes, sites: 0))
    }

    @Test func sitesThatAreAlreadyNOPsAreCountedAndLeftAlone() throws {
        let text = ModuleFtrace.nop + [0x55, 0xc3, 0x90] + ModuleFtrace.nop + [0xc3]
        let input = Self.module(text: text, textRelocations: [])
        let result = try ModuleFtrace.withoutCallSites(input, module: "nopped.ko")
        #expect(result.sites == 2)
        let elf = try ELFFile(bytes: result.bytes)
        let textSection = try #require(elf.section(named: ".text"))
        #expect(Array(result.bytes[textSection.offset..<(textSection.offset + textSection.size)]) == text)
    }

    @Test func aSiteThatIsNotACallToFentryIsAnErrorNamingModuleAndPlace() {
        #expect {
            _ = try ModuleFtrace.withoutCallSites(Self.module(fentry: "printk"), module: "veth.ko")
        } throws: { error in
            "\(error)".contains("veth.ko") && "\(error)".contains(".text+0") && "\(error)".contains("__fentry__")
        }
        var text = Self.callingText
        text[8] = 0xe9  // a jump, not a call
        #expect {
            _ = try ModuleFtrace.withoutCallSites(Self.module(text: text), module: "tun.ko")
        } throws: { error in "\(error)".contains("tun.ko") && "\(error)".contains(".text+8") }
        #expect {
            _ = try ModuleFtrace.withoutCallSites(Self.module(sites: [0, 12]), module: "bridge.ko")
        } throws: { error in "\(error)".contains("bridge.ko") && "\(error)".contains("outside") }
    }

    @Test func aSignedModuleIsRefused() {
        let signed = Self.module() + Array(repeating: 0x30, count: 16) + [0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 16] + ModuleSignature.marker
        #expect {
            _ = try ModuleFtrace.withoutCallSites(signed, module: "nf_nat.ko")
        } throws: { error in "\(error)".contains("nf_nat.ko") && "\(error)".contains("signed") }
    }

    @Test func otherMachinesAndPlainFilesAreUnchanged() throws {
        let arm = Self.module(machine: 183)
        #expect(try ModuleFtrace.withoutCallSites(arm, module: "a.ko") == ModuleFtrace.Result(bytes: arm, sites: 0))
        #expect(throws: ImageError.self) { _ = try ModuleFtrace.withoutCallSites([1, 2, 3], module: "junk.ko") }
    }
}

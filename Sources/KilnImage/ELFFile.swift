/// What KilnImage needs from an ELF64 little-endian file (System V gABI, "ELF-64 Object File Format"): its
/// type and machine, the program interpreter, the dynamic section's `DT_NEEDED`/`DT_SONAME`/`DT_RUNPATH`/
/// `DT_RPATH`, and the section table (a kernel module's `.modinfo` lives there). A pure parser: bytes in,
/// values out. Every offset is bounds-checked; malformed input throws `ImageError.malformedELF`.
public struct ELFFile: Sendable, Equatable {
    /// `e_type` values that matter here.
    public enum FileType: Sendable, Equatable {
        case relocatable, executable, sharedObject, core, other(UInt16)
        init(_ raw: UInt16) {
            switch raw {
            case 1: self = .relocatable
            case 2: self = .executable
            case 3: self = .sharedObject
            case 4: self = .core
            default: self = .other(raw)
            }
        }
    }

    /// One section header with its resolved name.
    public struct Section: Sendable, Equatable {
        public var name: String
        public var type: UInt32
        public var offset: Int
        public var size: Int
        /// `sh_flags` (SHF_ALLOC is 0x2).
        public var flags: UInt64 = 0
        /// `sh_link` and `sh_info`: for a relocation section, its symbol table and the section it patches.
        public var link = 0
        public var info = 0
        /// Where this section's header starts in the file.
        public var headerOffset = 0
    }

    public var type: FileType
    /// `e_machine` (62 is x86-64).
    public var machine: UInt16
    /// `PT_INTERP`: the dynamic loader's path, if any.
    public var interpreter: String?
    /// `DT_NEEDED` entries, in order.
    public var needed: [String]
    public var soname: String?
    /// `DT_RUNPATH` split at `:`.
    public var runpath: [String]
    /// `DT_RPATH` split at `:` (ignored by the loader when `DT_RUNPATH` is present).
    public var rpath: [String]
    public var sections: [Section]

    public static let machineX86_64: UInt16 = 62

    /// Parses `bytes`; `path` only names the file in errors.
    public init(bytes: [UInt8], path: String = "<memory>") throws(ImageError) {
        let reader = ELFReader(bytes: bytes, path: path)
        guard bytes.count >= 64 else { throw reader.error(0, "file shorter than the ELF header") }
        guard bytes[0] == 0x7f, bytes[1] == 0x45, bytes[2] == 0x4c, bytes[3] == 0x46 else {
            throw reader.error(0, "not an ELF file")
        }
        guard bytes[4] == 2 else { throw reader.error(4, "not a 64-bit ELF file (class \(bytes[4]))") }
        guard bytes[5] == 1 else { throw reader.error(5, "not little-endian (data \(bytes[5]))") }
        type = FileType(try reader.u16(16))
        machine = try reader.u16(18)
        let programHeaders = try Self.programHeaders(reader)
        interpreter = nil
        needed = []
        soname = nil
        runpath = []
        rpath = []
        sections = try Self.sections(reader)
        for header in programHeaders where header.type == 3 {
            let end = try reader.checkedRange(header.offset, header.fileSize)
            interpreter = try reader.cString(header.offset, limit: end)
        }
        if let dynamic = programHeaders.first(where: { $0.type == 2 }) {
            try parseDynamic(dynamic, loads: programHeaders.filter { $0.type == 1 }, reader)
        }
    }

    /// The first section called `name`.
    public func section(named name: String) -> Section? { sections.first { $0.name == name } }

    struct ProgramHeader {
        var type: UInt32, offset: Int, virtualAddress: UInt64, fileSize: Int
    }

    private static func programHeaders(_ reader: ELFReader) throws(ImageError) -> [ProgramHeader] {
        let offset = try reader.int(try reader.u64(32), at: 32)
        let entrySize = Int(try reader.u16(54))
        let count = Int(try reader.u16(56))
        if count == 0 { return [] }
        guard entrySize >= 56 else { throw reader.error(54, "program header size \(entrySize) < 56") }
        _ = try reader.checkedRange(offset, entrySize * count)
        return try (0..<count).map { (index: Int) throws(ImageError) -> ProgramHeader in
            let base = offset + index * entrySize
            return ProgramHeader(
                type: try reader.u32(base),
                offset: try reader.int(try reader.u64(base + 8), at: base + 8),
                virtualAddress: try reader.u64(base + 16),
                fileSize: try reader.int(try reader.u64(base + 32), at: base + 32))
        }
    }

    private static func sections(_ reader: ELFReader) throws(ImageError) -> [Section] {
        let offset = try reader.int(try reader.u64(40), at: 40)
        let entrySize = Int(try reader.u16(58))
        var count = Int(try reader.u16(60))
        var nameIndex = Int(try reader.u16(62))
        if offset == 0 { return [] }
        guard entrySize >= 64 else { throw reader.error(58, "section header size \(entrySize) < 64") }
        _ = try reader.checkedRange(offset, entrySize)
        if count == 0 { count = try reader.int(try reader.u64(offset + 32), at: offset + 32) }  // extended numbering
        if nameIndex == 0xffff { nameIndex = Int(try reader.u32(offset + 40)) }
        guard count <= reader.bytes.count / entrySize else { throw reader.error(60, "section count \(count) too large") }
        _ = try reader.checkedRange(offset, entrySize * count)
        var raw = [(nameOffset: Int, section: Section)]()
        for index in 0..<count {
            let base = offset + index * entrySize
            let type = try reader.u32(base + 4)
            let size = try reader.int(try reader.u64(base + 32), at: base + 32)
            let fileOffset = try reader.int(try reader.u64(base + 24), at: base + 24)
            if type != 8 { _ = try reader.checkedRange(fileOffset, size) }  // SHT_NOBITS has no file bytes
            raw.append((Int(try reader.u32(base)),
                        Section(name: "", type: type, offset: fileOffset, size: size, flags: try reader.u64(base + 8),
                                link: Int(try reader.u32(base + 40)), info: Int(try reader.u32(base + 44)), headerOffset: base)))
        }
        guard nameIndex < raw.count else { return raw.map(\.section) }
        let names = raw[nameIndex].section
        let namesEnd = try reader.checkedRange(names.offset, names.size)
        return try raw.map { (entry: (nameOffset: Int, section: Section)) throws(ImageError) -> Section in
            guard entry.nameOffset < names.size else { throw reader.error(names.offset, "section name out of range") }
            var section = entry.section
            section.name = try reader.cString(names.offset + entry.nameOffset, limit: namesEnd)
            return section
        }
    }

    private mutating func parseDynamic(_ dynamic: ProgramHeader, loads: [ProgramHeader], _ reader: ELFReader) throws(ImageError) {
        _ = try reader.checkedRange(dynamic.offset, dynamic.fileSize)
        var strtab: UInt64?
        var strsz: Int?
        var entries = [(tag: UInt64, value: UInt64)]()
        for index in 0..<(dynamic.fileSize / 16) {
            let base = dynamic.offset + index * 16
            let tag = try reader.u64(base)
            if tag == 0 { break }
            let value = try reader.u64(base + 8)
            entries.append((tag, value))
            if tag == 5 { strtab = value }
            if tag == 10 { strsz = try reader.int(value, at: base + 8) }
        }
        let interesting: Set<UInt64> = [1, 14, 15, 29]
        guard entries.contains(where: { interesting.contains($0.tag) }) else { return }
        guard let strtab, let strsz else { throw reader.error(dynamic.offset, "dynamic section without DT_STRTAB/DT_STRSZ") }
        guard let load = loads.first(where: { strtab >= $0.virtualAddress && strtab - $0.virtualAddress < UInt64($0.fileSize) })
        else { throw reader.error(dynamic.offset, "DT_STRTAB address 0x\(String(strtab, radix: 16)) is not in a loaded segment") }
        let tableOffset = load.offset + Int(strtab - load.virtualAddress)
        let tableEnd = try reader.checkedRange(tableOffset, strsz)
        func string(_ value: UInt64) throws(ImageError) -> String {
            guard value < UInt64(strsz) else { throw reader.error(tableOffset, "dynamic string offset \(value) beyond DT_STRSZ") }
            return try reader.cString(tableOffset + Int(value), limit: tableEnd)
        }
        for entry in entries {
            switch entry.tag {
            case 1: needed.append(try string(entry.value))
            case 14: soname = try string(entry.value)
            case 15: rpath = try string(entry.value).split(separator: ":").map(String.init)
            case 29: runpath = try string(entry.value).split(separator: ":").map(String.init)
            default: break
            }
        }
    }
}

/// Bounds-checked little-endian reads over a byte array.
struct ELFReader {
    let bytes: [UInt8]
    let path: String

    func error(_ offset: Int, _ reason: String) -> ImageError {
        .malformedELF(path: path, offset: offset, reason: reason)
    }

    /// Checks that `offset..<offset+count` lies inside the file; returns the end.
    func checkedRange(_ offset: Int, _ count: Int) throws(ImageError) -> Int {
        let (end, overflow) = offset.addingReportingOverflow(count)
        guard offset >= 0, count >= 0, !overflow, end <= bytes.count else {
            throw error(offset, "range of \(count) bytes runs past the end of the file (\(bytes.count) bytes)")
        }
        return end
    }

    func int(_ value: UInt64, at offset: Int) throws(ImageError) -> Int {
        guard value <= UInt64(Int.max) else { throw error(offset, "value \(value) out of range") }
        return Int(value)
    }

    private func load(_ offset: Int, _ size: Int) throws(ImageError) -> UInt64 {
        _ = try checkedRange(offset, size)
        var value: UInt64 = 0
        for index in (0..<size).reversed() { value = value << 8 | UInt64(bytes[offset + index]) }
        return value
    }

    func u16(_ offset: Int) throws(ImageError) -> UInt16 { UInt16(truncatingIfNeeded: try load(offset, 2)) }
    func u32(_ offset: Int) throws(ImageError) -> UInt32 { UInt32(truncatingIfNeeded: try load(offset, 4)) }
    func u64(_ offset: Int) throws(ImageError) -> UInt64 { try load(offset, 8) }

    /// A NUL-terminated string starting at `offset` that must end before `limit`.
    func cString(_ offset: Int, limit: Int) throws(ImageError) -> String {
        guard offset >= 0, offset <= limit, limit <= bytes.count else { throw error(offset, "string out of range") }
        guard let end = bytes[offset..<limit].firstIndex(of: 0) else { throw error(offset, "unterminated string") }
        return String(decoding: bytes[offset..<end], as: UTF8.self)
    }
}

import Glibc

/// Builds a `ModuleIndex` from the module files themselves, as depmod does: each `.ko` carries a `.modinfo`
/// section of NUL-separated `key=value` strings with `name=`, `depends=a,b` and `softdep=pre: x post: y`.
/// Also turns compressed modules (`.ko.xz`, `.ko.zst`, `.ko.gz`) into plain `.ko` bytes.
public enum ModuleScanner {
    /// Scans `modulesDirectory` (a staged `/lib/modules/<release>`) for modules. Reads `modules.builtin` when
    /// present. Plain `.ko` files are read sparsely (ELF header, section table, `.modinfo`), so a scan of a
    /// thousand modules reads a few megabytes, not the whole tree.
    public static func scan(modulesDirectory: String) throws -> ModuleIndex {
        var modules = [ModuleIndex.Module]()
        let prefix = modulesDirectory + "/"
        for file in try FileSystem.regularFiles(under: modulesDirectory) where ModuleIndex.isModulePath(file) {
            let relative = String(file.dropFirst(prefix.count))
            let info = try modinfo(ofFile: file)
            modules.append(module(path: relative, info: info))
        }
        modules.sort { $0.path.utf8.lexicographicallyPrecedes($1.path.utf8) }
        // depends= names modules; modules.dep lists paths.
        let pathByName = Dictionary(modules.map { ($0.name, $0.path) }, uniquingKeysWith: { first, _ in first })
        for index in modules.indices {
            modules[index].dependencies = try modules[index].dependencies.map { name in
                guard let path = pathByName[ModuleIndex.normalize(name)] else {
                    throw ImageError.malformedModulesDep(path: prefix + modules[index].path, line: 0,
                                                         reason: "depends on \(name), which is not in \(modulesDirectory)")
                }
                return path
            }
        }
        var builtin = Set<String>()
        let builtinPath = prefix + "modules.builtin"
        if FileSystem.lstat(builtinPath) != nil {
            let text = String(decoding: try FileSystem.readFile(builtinPath), as: UTF8.self)
            builtin = Set(text.split(separator: "\n").map { ModuleIndex.name(ofPath: String($0)) })
        }
        return ModuleIndex(modules: modules, builtin: builtin)
    }

    /// A module from its `.modinfo` fields (`dependencies` still holds names, not paths).
    static func module(path: String, info: [(String, String)]) -> ModuleIndex.Module {
        var name = ModuleIndex.name(ofPath: path)
        var depends = [String]()
        var pre = [String]()
        var post = [String]()
        for (key, value) in info {
            switch key {
            case "name": name = ModuleIndex.normalize(value)
            case "depends": depends += value.split(separator: ",").map(String.init)
            case "softdep":
                var target = 0  // 1 = pre, 2 = post
                for word in value.split(separator: " ") {
                    if word == "pre:" { target = 1 } else if word == "post:" { target = 2 } else if target == 1 {
                        pre.append(String(word))
                    } else if target == 2 {
                        post.append(String(word))
                    }
                }
            default: break
            }
        }
        return ModuleIndex.Module(name: name, path: path, dependencies: depends, softPre: pre, softPost: post)
    }

    /// The `.modinfo` key/value pairs of a module file (compressed or not), in file order.
    public static func modinfo(ofFile path: String) throws -> [(String, String)] {
        let bytes: [UInt8]
        if path.hasSuffix(".ko") {
            bytes = try sparseELF(path)
        } else {
            bytes = try loadableBytes(ofFile: path)
        }
        let elf = try ELFFile(bytes: bytes, path: path)
        guard let section = elf.section(named: ".modinfo") else { return [] }
        return parseModinfo(bytes[section.offset..<(section.offset + section.size)])
    }

    /// Splits a `.modinfo` section into `key=value` pairs.
    public static func parseModinfo(_ bytes: ArraySlice<UInt8>) -> [(String, String)] {
        bytes.split(separator: 0).compactMap { field in
            guard let equals = field.firstIndex(of: UInt8(ascii: "=")) else { return nil }
            return (String(decoding: field[..<equals], as: UTF8.self),
                    String(decoding: field[(equals + 1)...], as: UTF8.self))
        }
    }

    /// The module's plain ELF bytes: decompressed for `.ko.xz`/`.ko.zst`/`.ko.gz` (libarchive's raw format),
    /// as is for `.ko`.
    public static func loadableBytes(ofFile path: String) throws -> [UInt8] {
        if path.hasSuffix(".ko") { return try FileSystem.readFile(path) }
        let reader = try ArchiveReader(path: path, formats: .raw)
        guard try reader.nextEntry() != nil else {
            throw ImageError.badArchive(archive: path, reason: "empty compressed module")
        }
        let bytes = try reader.readAll(limit: 1 << 28)
        guard bytes.starts(with: [0x7f, 0x45, 0x4c, 0x46]) else {
            throw ImageError.badArchive(archive: path, reason: "decompressed module is not an ELF file")
        }
        return bytes
    }

    /// A buffer the size of the file in which only the ELF header, the section table, the section names and
    /// `.modinfo` are read; the rest stays zero. Enough for `ELFFile` to find `.modinfo` in a relocatable file.
    static func sparseELF(_ path: String) throws -> [UInt8] {
        let fd = try FileSystem.check("open", path) { open(path, O_RDONLY | O_CLOEXEC) }
        defer { close(fd) }
        var st = stat()
        try FileSystem.check("fstat", path) { fstat(fd, &st) }
        var bytes = [UInt8](repeating: 0, count: Int(st.st_size))
        func fill(_ offset: Int, _ count: Int) throws {
            guard offset >= 0, offset < bytes.count, count > 0 else { return }
            let end = offset + min(count, bytes.count - offset)
            var done = offset
            while done < end {
                let got = try FileSystem.check("pread", path) {
                    bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, end - done, off_t(done)) }
                }
                if got == 0 { break }
                done += got
            }
        }
        try fill(0, 64)
        guard bytes.count >= 64, bytes.starts(with: [0x7f, 0x45, 0x4c, 0x46]) else { return bytes }
        // Small readers over copies, so filling `bytes` never copies the whole buffer.
        let header = ELFReader(bytes: Array(bytes[0..<64]), path: path)
        let tableOffset = Int(clamping: try header.u64(40))
        let entrySize = Int(try header.u16(58))
        let count = Int(try header.u16(60))
        let namesIndex = Int(try header.u16(62))
        guard entrySize >= 64, count > 0, namesIndex < count, tableOffset < bytes.count,
              tableOffset + entrySize * count <= bytes.count else { return bytes }
        try fill(tableOffset, entrySize * count)
        let namesHeader = tableOffset + namesIndex * entrySize
        let names = ELFReader(bytes: Array(bytes[namesHeader..<(namesHeader + 64)]), path: path)
        try fill(Int(clamping: try names.u64(24)), Int(clamping: try names.u64(32)))
        let elf = try ELFFile(bytes: bytes, path: path)
        if let section = elf.section(named: ".modinfo") { try fill(section.offset, section.size) }
        return bytes
    }
}

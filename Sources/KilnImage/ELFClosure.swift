/// The files a set of dynamically linked programs needs at run time, found the way the dynamic loader
/// (ld.so(8)) would find them, but inside a staging root: `PT_INTERP`, then every `DT_NEEDED` searched in
/// `DT_RPATH` (when there is no `DT_RUNPATH`), `DT_RUNPATH` (with `$ORIGIN`), then the default directories.
/// Symlinks (`libfoo.so.1 -> libfoo.so.1.2.3`, `/lib64/ld-linux-x86-64.so.2 -> ...`) are followed inside the
/// root and reported too, so the image can carry the same names.
public struct ELFClosure: Sendable {
    /// Debian's multiarch and legacy library directories for x86-64, in the loader's order.
    public static let defaultSearchDirectories = [
        "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib",
    ]

    /// The closure of some binaries.
    public struct Result: Sendable, Equatable {
        /// Every guest path the programs need: binaries, libraries, the interpreter, and every symlink followed
        /// to reach them. Sorted bytewise, no duplicates. lstat them in the root to tell symlinks from files.
        public var paths: [String]
        /// Each library name that was looked up (a `DT_NEEDED` or `PT_INTERP` value) → the resolved file.
        public var resolved: [String: String]
    }

    public let root: StagingRoot
    public var searchDirectories: [String]

    public init(root: String, searchDirectories: [String] = ELFClosure.defaultSearchDirectories) {
        self.root = StagingRoot(root)
        self.searchDirectories = searchDirectories
    }

    /// The transitive closure of `binaries` (guest paths inside the root). Throws `missingLibrary` naming the
    /// object that needs a library that cannot be found, `missingPath` for a missing binary, `malformedELF`.
    public func resolve(binaries: [String]) throws -> Result {
        var paths = Set<String>()
        var resolvedNames = [String: String]()
        var parsed = [String: ELFFile]()
        var queue = [String]()
        var seen = Set<String>()

        func load(_ guestPath: String) throws -> ELFFile {
            if let file = parsed[guestPath] { return file }
            let file = try ELFFile(bytes: try FileSystem.readFile(root.hostPath(guestPath)), path: guestPath)
            parsed[guestPath] = file
            return file
        }
        func enqueue(_ resolution: StagingRoot.Resolution) {
            paths.formUnion(resolution.symlinks)
            paths.insert(resolution.path)
            if seen.insert(resolution.path).inserted { queue.append(resolution.path) }
        }

        for binary in binaries {
            guard let resolution = try regularFile(binary) else {
                throw ImageError.missingPath(root: root.path, path: binary)
            }
            enqueue(resolution)
        }
        var index = 0
        while index < queue.count {
            let object = queue[index]
            index += 1
            let elf = try load(object)
            if let interpreter = elf.interpreter {
                guard let resolution = try regularFile(interpreter) else {
                    throw ImageError.missingLibrary(binary: object, library: interpreter, searched: [interpreter])
                }
                resolvedNames[interpreter] = resolution.path
                enqueue(resolution)
            }
            for name in elf.needed {
                // The loader loads each name once per process, whoever asks for it.
                if !name.contains("/"), resolvedNames[name] != nil { continue }
                let directories = searchPath(for: elf, at: object)
                guard let resolution = try find(name, in: directories, machine: elf.machine, load: load) else {
                    throw ImageError.missingLibrary(binary: object, library: name, searched: directories)
                }
                resolvedNames[name] = resolution.path
                enqueue(resolution)
            }
        }
        return Result(paths: paths.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }, resolved: resolvedNames)
    }

    /// The directories searched for `elf`'s dependencies, `$ORIGIN` expanded.
    func searchPath(for elf: ELFFile, at guestPath: String) -> [String] {
        let origin = FileSystem.parentPath(guestPath)
        let expand = { (entry: String) in
            entry.replacingAll("${ORIGIN}", with: origin).replacingAll("$ORIGIN", with: origin)
        }
        let own = elf.runpath.isEmpty ? elf.rpath : elf.runpath
        return own.map(expand) + searchDirectories
    }

    /// The first file called `name` in `directories` that is an ELF object for `machine`.
    private func find(_ name: String, in directories: [String], machine: UInt16,
                      load: (String) throws -> ELFFile) throws -> StagingRoot.Resolution? {
        let candidates = name.contains("/") ? [name] : directories.map { $0 + "/" + name }
        for candidate in candidates {
            guard let resolution = try regularFile(candidate) else { continue }
            // The loader skips files of another architecture (an i386 library in /usr/lib) and keeps looking.
            guard let elf = try? load(resolution.path), elf.machine == machine else { continue }
            return resolution
        }
        return nil
    }

    /// Resolves `guestPath` inside the root; nil unless it ends at a regular file.
    private func regularFile(_ guestPath: String) throws -> StagingRoot.Resolution? {
        guard let resolution = try root.resolve(guestPath),
              let st = FileSystem.lstat(root.hostPath(resolution.path)), FileSystem.isRegular(st)
        else { return nil }
        return resolution
    }
}

extension String {
    func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty, contains(target) else { return self }
        var result = ""
        var rest = self[...]
        while let range = rest.firstRange(of: target) {
            result += rest[..<range.lowerBound]
            result += replacement
            rest = rest[range.upperBound...]
        }
        return result + rest
    }
}

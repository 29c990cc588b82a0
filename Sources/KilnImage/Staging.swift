import Foundation
import Glibc
import KilnManifest

/// Extracted package trees and merged roots, cached under the package cache by content hash, so a warm
/// build reads no .deb at all. Every cache entry is built in a temporary directory and renamed into place.
public struct Staging: Sendable {
    public let cacheDirectory: String
    public init(cacheDirectory: String) { self.cacheDirectory = cacheDirectory }

    /// `<cache>/trees/<sha256>`: the data.tar of one .deb.
    public func extracted(deb: String, sha256: String) throws -> String {
        let path = cacheDirectory + "/trees/" + sha256
        if FileSystem.lstat(path + "/.complete") != nil { return path }
        try publish(path) { tmp in
            _ = try DebArchive(path: deb).extractData(into: tmp)
        }
        return path
    }

    /// `<cache>/roots/<hash>`: several trees hard-linked into one root, the first package winning a clash.
    public func merged(_ trees: [String], key: String) throws -> String {
        let path = cacheDirectory + "/roots/" + Hashing.sha256(key)
        if FileSystem.lstat(path + "/.complete") != nil { return path }
        try publish(path) { tmp in
            for tree in trees { try link(tree: tree, into: tmp, relative: "") }
        }
        return path
    }

    /// A root holding `base`'s files plus kiln-init (stripped of symbols when `strip` is available) at
    /// /sbin/kiln-init, keyed by both, so concurrent builds with different kiln-init binaries never share one.
    /// Returns that root and the guest paths kiln-init needs at run time: itself, the dynamic loader, and the
    /// libraries with their symlinks.
    /// `executables` are Kiln's other guest binaries (`kiln-vpn`), placed at /sbin/<name> the same way.
    /// `programs` are guest paths of programs that go in with their libraries: the manifest packages' programs, and
    /// the services' programs (those not in the packages are left out; a service may run a file the manifest adds).
    public func libraryClosure(root base: String, initBinary: String, executables: [(name: String, path: String)] = [],
                               programs: [String] = []) throws -> (root: String, closure: ELFClosure.Result) {
        let binaries = [("kiln-init", initBinary)] + executables
        let key = try binaries.map { "\($0.0)=\(try Hashing.sha256(file: $0.1).sha256)" }.joined(separator: ",")
        let path = base + "+init-" + (executables.isEmpty ? try Hashing.sha256(file: initBinary).sha256 : Hashing.sha256(key))
        if FileSystem.lstat(path + "/.complete") == nil {
            try publish(path) { tmp in
                try link(tree: base, into: tmp, relative: "")
                try FileSystem.makeDirectories(tmp + "/sbin")
                for (name, binary) in binaries {
                    let target = tmp + "/sbin/" + name
                    let strip = try? Process.run(URL(fileURLWithPath: "/usr/bin/strip"), arguments: ["--strip-all", "-o", target, binary])
                    strip?.waitUntilExit()
                    if strip?.terminationStatus != 0 {
                        unlink(target)
                        try FileManager.default.copyItem(atPath: binary, toPath: target)
                    }
                    chmod(target, 0o755)
                }
            }
        }
        let root = StagingRoot(path)
        // A service's program that no package provides (a file the manifest adds) has no closure to follow.
        let kiln = Set(binaries.map { "/sbin/" + $0.0 })
        let present = programs.filter { $0.hasPrefix("/") && !kiln.contains($0) && FileSystem.lstat(root.hostPath($0)) != nil }
        return (path, try ELFClosure(root: path).resolve(binaries: binaries.map { "/sbin/" + $0.0 } + present))
    }

    /// The guest paths of the ELF programs in these extracted package trees' bin and sbin directories.
    public static func programs(in trees: [String]) throws -> [String] {
        var found: [String] = []
        for tree in trees {
            for dir in ["/bin", "/sbin", "/usr/bin", "/usr/sbin"] {
                for name in (try? FileSystem.listDirectory(tree + dir)) ?? [] {
                    guard let st = FileSystem.lstat(tree + dir + "/" + name), FileSystem.isRegular(st), st.st_mode & 0o111 != 0,
                          let file = FileHandle(forReadingAtPath: tree + dir + "/" + name),
                          [UInt8](file.readData(ofLength: 4)) == [0x7F, 0x45, 0x4C, 0x46]
                    else { continue }
                    found.append(dir + "/" + name)
                }
            }
        }
        return found.sorted()
    }

    private func link(tree: String, into root: String, relative: String) throws {
        for name in try FileSystem.listDirectory(tree + relative) where name != ".complete" {
            let rel = relative + "/" + name
            let source = tree + rel, target = root + rel
            guard let st = FileSystem.lstat(source) else { continue }
            if FileSystem.isDirectory(st) {
                if FileSystem.lstat(target) == nil { try FileSystem.check("mkdir", target) { mkdir(target, st.st_mode & 0o7777) } }
                try link(tree: tree, into: root, relative: rel)
            } else if FileSystem.lstat(target) == nil {
                if FileSystem.isSymlink(st) {
                    let dest = try FileSystem.readLink(source)
                    try FileSystem.check("symlink", target) { symlink(dest, target) }
                } else {
                    try FileSystem.check("link", target) { Glibc.link(source, target) }
                }
            }
        }
    }

    /// Builds `path` through `fill` in a sibling temporary directory, marks it complete and renames it in.
    /// Builds running at the same time may fill the same entry: the first to publish wins and the others use its
    /// copy; a published entry is never removed, since another build may be reading it.
    func publish(_ path: String, _ fill: (String) throws -> Void) throws {
        let tmp = path + ".tmp-\(getpid())"
        try FileSystem.removeTree(tmp)
        try FileSystem.makeDirectories(tmp)
        do {
            try fill(tmp)
            try FileSystem.writeFile(tmp + "/.complete", [], sync: false)
            // Only an unfinished entry (no marker, left by an interrupted older build) is replaced.
            if FileSystem.lstat(path) != nil, FileSystem.lstat(path + "/.complete") == nil { try FileSystem.removeTree(path) }
            if FileSystem.lstat(path + "/.complete") == nil, rename(tmp, path) == 0 { return }
            guard FileSystem.lstat(path + "/.complete") != nil else { throw ImageError.system(operation: "rename", path: path, errno: errno) }
            try FileSystem.removeTree(tmp)
        } catch {
            try? FileSystem.removeTree(tmp)
            throw error
        }
    }
}

/// The kernel package's tree: the vmlinuz, its release and its modules.
public struct KernelTree: Sendable {
    public let root: String
    public let vmlinuz: String
    public let release: String

    public init(root: String, package: String) throws {
        self.root = root
        let boot = (try? FileSystem.listDirectory(root + "/boot")) ?? []
        guard let image = boot.filter({ $0.hasPrefix("vmlinuz-") }).sorted().last else {
            throw BuildError.kernel(package: package, reason: "no /boot/vmlinuz-* in the package")
        }
        vmlinuz = root + "/boot/" + image
        release = String(image.dropFirst("vmlinuz-".count))
    }

    public var modulesDirectory: String { root + "/lib/modules/" + release }

    public func index() throws -> ModuleIndex { try ModuleScanner.scan(modulesDirectory: modulesDirectory) }
}

/// The initramfs as layers, most stable first, so a config change rebuilds only the last small one.
struct LayerPlan {
    var release: String
    var kernelRoot: String
    var modules: [ModuleIndex.Module]
    var libraryRoot: String
    var libraries: ELFClosure.Result
    var initBinary: String
    /// Kiln's other guest executables, already in `libraryRoot` at /sbin/<name>.
    var executables: [String]
    var files: [ImageFile]
    /// Modules go in without their appended signatures (`kernel.moduleSignatures: strip`).
    var stripSignatures: Bool
    /// Modules go in with their ftrace call sites already NOPs (`kernel.moduleFtrace: strip`).
    var stripFtrace: Bool
    /// Files compiled from the manifest: `/etc/kiln/config.json` and each role's runtime config.
    var config: [ImageFile]

    init(release: String, kernelRoot: String, modules: [ModuleIndex.Module], libraryRoot: String, libraries: ELFClosure.Result,
         initBinary: String, executables: [String] = [], files: [ImageFile], stripSignatures: Bool = false, stripFtrace: Bool = false,
         config: [ImageFile]) {
        self.release = release; self.kernelRoot = kernelRoot; self.modules = modules; self.libraryRoot = libraryRoot
        self.libraries = libraries; self.initBinary = initBinary; self.executables = executables; self.files = files; self.config = config
        self.stripSignatures = stripSignatures; self.stripFtrace = stripFtrace
    }

    /// The accounts daemons drop privileges to (dnsmasq and most others default to `nobody`; Debian's dnsmasq
    /// also to group `dip`), as a Debian system has them. A manifest's `files:` may replace either file.
    static let passwd = """
        root:x:0:0:root:/root:/bin/sh
        daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
        nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin

        """
    static let group = """
        root:x:0:
        daemon:x:1:
        dip:x:30:
        nogroup:x:65534:

        """

    func layers() throws -> [ImageLayer] {
        let base: [CpioEntry] = ["/dev", "/proc", "/sys", "/run", "/tmp", "/etc", "/etc/kiln", "/var", "/var/lib", "/var/lib/kiln",
                                 "/sbin", "/lib", "/lib/modules"].map { .directory($0) }
            + [.characterDevice("/dev/console", major: 5, minor: 1), .characterDevice("/dev/null", major: 1, minor: 3, mode: 0o666),
               .symlink("/init", target: "/sbin/kiln-init"),
               .file("/etc/passwd", bytes: Array(Self.passwd.utf8), mode: 0o644), .file("/etc/group", bytes: Array(Self.group.utf8), mode: 0o644),
               .symlink("/var/run", target: "../run"), .symlink("/var/lock", target: "../run/lock")]
        let moduleDir = "/lib/modules/\(release)/"
        let moduleEntries: [CpioEntry] = try modules.map { m in
            if m.imagePath == m.path && !stripSignatures && !stripFtrace {
                return CpioEntry(path: moduleDir + m.imagePath, kind: .regular(.file(kernelRoot + moduleDir + m.path)), mode: 0o644)
            }
            var bytes = try ModuleScanner.loadableBytes(ofFile: kernelRoot + moduleDir + m.path)
            if stripSignatures { bytes = try ModuleSignature.stripped(bytes, module: m.path) }
            if stripFtrace { bytes = try ModuleFtrace.withoutCallSites(bytes, module: m.path).bytes }
            return .file(moduleDir + m.imagePath, bytes: bytes)
        }
        let ownBinaries = Set(["/sbin/kiln-init"] + executables.map { "/sbin/" + $0 })
        let libs = try CpioEntry.staged(root: libraryRoot, paths: libraries.paths.filter { !ownBinaries.contains($0) })
        let initEntry = try CpioEntry.staged(root: libraryRoot, paths: ["/sbin/kiln-init"])
        let executableEntries = try CpioEntry.staged(root: libraryRoot, paths: executables.map { "/sbin/" + $0 })
        let fileEntries = files.map(\.cpioEntry)
        return [
            ImageLayer(name: "base", entries: base),
            ImageLayer(name: "modules", entries: moduleEntries),
            ImageLayer(name: "libraries", entries: libs),
            ImageLayer(name: "init", entries: initEntry),
            ImageLayer(name: "executables", entries: executableEntries),
            ImageLayer(name: "files", entries: fileEntries),
            ImageLayer(name: "config", entries: config.map(\.cpioEntry)),
        ].filter { !$0.entries.isEmpty }
    }

    func build(cache: LayerCache, epoch: UInt32, level: Int32) throws -> [CachedLayer] {
        let built = try layers().map { try cache.build($0, epoch: epoch, level: $0.name == "config" ? 3 : level) }
        return built
    }
}

extension ImageFile {
    /// The file, or the symbolic link, as the initramfs holds it.
    var cpioEntry: CpioEntry {
        linkTarget.map { CpioEntry.symlink(path, target: $0) } ?? CpioEntry.file(path, bytes: contents, mode: mode)
    }
}

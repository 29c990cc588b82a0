import Foundation
import KilnConfig
import KilnDHCP
import KilnSwitch
import KilnFirewall
import KilnWANOpt
import KilnManifest
import KilnPackages
import Logging

/// How to build: where things are and what may touch the network.
public struct BuildOptions: Sendable {
    public var manifest: String
    public var outputRoot = "out"
    public var mirror: String?
    /// Never touch the network: the lock file and the cache must have everything.
    public var offline = false
    public var updateLock = false
    /// The guest's kiln-init binary; found beside the running kiln when nil.
    public var initBinary: String?
    public var cacheDirectory: String?
    /// `files: source:` may read outside the manifest's directory tree.
    public var allowHostFiles = false
    public init(manifest: String) { self.manifest = manifest }
}

/// manifest → lock → verified .debs → staged trees → layers → `out/<name>/`, each step timed.
public struct Builder {
    public let options: BuildOptions
    public let logger: Logger
    public let progress: any ProgressReporter

    public init(options: BuildOptions, logger: Logger, progress: any ProgressReporter = SilentProgress()) {
        self.options = options; self.logger = logger; self.progress = progress
    }

    public func build() throws -> (directory: String, info: BuildInfo) {
        var timings: [String: Double] = [:]
        func step<T>(_ name: String, _ body: () throws -> T) rethrows -> T {
            let start = Date()
            defer { timings[name] = (Date().timeIntervalSince(start) * 1000).rounded() / 1000 }
            logger.debug("step \(name)")
            return try body()
        }
        let total = Date()
        let spec = try step("manifest") { try ManifestLoader.load(options.manifest, allowHostFiles: options.allowHostFiles) }
        for warning in spec.warnings { logger.warning("\(warning.description)") }
        let initBinary = try step("init") { try findInit() }
        let executables = try step("executables") { try spec.guestExecutables.map { ($0, try findGuestExecutable($0)) } }
        let cache = PackageCache(directory: options.cacheDirectory, logger: logger)
        let leftovers = cache.sweepLeftovers() + Leftovers.sweep(options.outputRoot)
        if !leftovers.isEmpty {
            logger.info("removed leftovers of interrupted builds", metadata: ["paths": "\(leftovers.joined(separator: " "))"])
        }
        let sources = try AptConfiguration.sources(mirror: options.mirror, distribution: spec.base.distribution)
        let (lock, lockPath, _) = try step("lock") {
            try Locking.ensure(spec, sources: sources, cache: cache, update: options.updateLock, offline: options.offline, logger: logger)
        }
        let debs = try step("fetch") { try cache.ensure(lock.packages, sources: sources, parallel: 4, progress: progress) }
        let staging = Staging(cacheDirectory: cache.directory)
        let trees = try step("extract") { try lock.packages.map { ($0, try staging.extracted(deb: debs[$0.name] ?? "", sha256: $0.sha256)) } }

        guard let kernelPackage = lock.packages.first(where: { $0.name.hasPrefix("linux-image-") && $0.name != spec.base.kernel.package }),
              let kernelTree = trees.first(where: { $0.0.name == kernelPackage.name })?.1
        else { throw BuildError.kernel(package: spec.base.kernel.package, reason: "not in the lock file \(lockPath)") }
        let kernel = try step("kernel") { try KernelTree(root: kernelTree, package: kernelPackage.name) }
        let (modules, plan) = try step("modules") { try kernel.index().plan(common: spec.modules, platforms: spec.platformModules, release: kernel.release) }

        // The UEFI stub is an input of the disk image, not of the initramfs.
        let stubTree = trees.first { $0.0.name == UnifiedKernelImage.stubPackage }?.1
        let hypervisorTree = spec.xen.flatMap { xen in trees.first { $0.0.name == xen.hypervisorPackage }?.1 }
        let runtime = trees.filter { $0.0.name != kernelPackage.name && $0.0.name != UnifiedKernelImage.stubPackage && $0.1 != hypervisorTree }
        let merged = try step("merge") { try staging.merged(runtime.map(\.1), key: runtime.map(\.0.sha256).joined(separator: ",")) }
        let programs = try step("programs") { try Staging.programs(in: runtime.filter { spec.programPackages.contains($0.0.name) }.map(\.1)) }
        let (imageRoot, closure) = try step("closure") {
            try staging.libraryClosure(root: merged, initBinary: initBinary, executables: executables, programs: Array(Set(programs + spec.services.compactMap(\.argv.first) + spec.runtimeLibraries)).sorted())
        }

        let epoch = lock.sourceDateEpoch
        let roles = try step("roles") { try RoleConfig(spec) }
        let guest = GuestConfig(
            name: spec.name, hostname: spec.hostname, kernelRelease: kernel.release,
            interfaces: spec.interfaces, vlans: spec.vlans, bridges: spec.bridges, routes: spec.routes, sysctl: spec.sysctl,
            tuntap: spec.tuntap, firewall: spec.firewall.map { GuestFirewall(bootstrap: FirewallCompiler.bootstrap(), ruleset: $0.ruleset.text) },
            services: spec.services + roles.services)
        let layers = try step("layers") {
            try LayerPlan(release: kernel.release, kernelRoot: kernelTree, modules: modules, libraryRoot: imageRoot,
                          libraries: closure, initBinary: initBinary, executables: executables.map(\.0), files: spec.files,
                          stripSignatures: spec.base.kernel.moduleSignatures == .strip,
                          stripFtrace: spec.base.kernel.moduleFtrace == .strip,
                          config: [ImageFile(path: GuestConfig.path, mode: 0o644, contents: Array(try KilnJSON.encode(guest).pretty.utf8)),
                                   ImageFile(path: ModulePlan.path, mode: 0o644, contents: Array(plan.text.utf8))] + roles.files)
                .build(cache: try LayerCache(directory: cache.directory + "/layers"), epoch: UInt32(clamping: epoch),
                       level: Int32(spec.base.compression?.level ?? 19))
        }

        let outDir = options.outputRoot + "/" + spec.name
        let info = try step("output") {
            // An image holding a secret (a private key) makes every output that carries it 0600 in a 0700 directory.
            let secret = layers.contains(where: \.secret)
            // A test record survives a rebuild: `kiln deploy` compares its hashes with the files, so it vouches
            // for identical bytes (a reproducible rebuild) and for nothing else.
            let testRecord = FileManager.default.contents(atPath: outDir + "/tested.json")
            return try AtomicOutput.replaceDirectory(at: outDir, mode: secret ? 0o700 : 0o755) { tmp -> BuildInfo in
                if let testRecord { try AtomicOutput.write(Array(testRecord), to: tmp + "/tested.json") }
                let initrd = try LayerCache.concatenate(layers, to: tmp + "/initramfs.cpio.zst")
                try FileManager.default.copyItem(atPath: kernel.vmlinuz, toPath: tmp + "/vmlinuz")
                let vmlinuz = try Hashing.sha256(file: tmp + "/vmlinuz")
                var hypervisor: [BuildInfo.Artifact] = []
                if let xen = spec.xen {
                    guard let hypervisorTree else { throw BuildError.lockOutdated(lock: lockPath, missing: [xen.hypervisorPackage]) }
                    let h = try step("hypervisor") { try Hypervisor.extract(tree: hypervisorTree, package: xen.hypervisorPackage, to: tmp + "/" + Hypervisor.file) }
                    hypervisor = [.init(file: Hypervisor.file, sha256: h.sha256, size: h.size)]
                }
                let formats = spec.base.formats ?? [.kernelInitrd]
                var disks: [BuildInfo.Artifact] = []
                if DiskFormats.needsStub(formats) {
                    guard let stubTree else {
                        throw BuildError.lockOutdated(lock: lockPath, missing: [UnifiedKernelImage.stubPackage])
                    }
                    let stubPath = stubTree + "/" + UnifiedKernelImage.stubPath
                    let uki = try step("uki") {
                        try UnifiedKernelImage.build(
                            stub: FileSystem.readFile(stubPath),
                            sections: UnifiedKernelImage.sections(
                                osRelease: UnifiedKernelImage.osRelease(name: spec.name, kernelRelease: kernel.release),
                                cmdline: spec.base.kernel.cmdline, kernel: FileSystem.readFile(tmp + "/vmlinuz"),
                                initrd: FileSystem.readFile(tmp + "/initramfs.cpio.zst")),
                            path: stubPath)
                    }
                    let scratch = tmp + "/.scratch"
                    try FileSystem.makeDirectories(scratch)
                    let files = try step("disks") {
                        try DiskFormats.write(formats, uki: uki, directory: tmp, scratch: scratch,
                                              seed: try Hashing.sha256(file: lockPath).sha256 + "/" + spec.name, epoch: epoch)
                    }
                    try FileSystem.removeTree(scratch)
                    if secret { for f in files { try FileSystem.check("chmod", tmp + "/" + f) { chmod(tmp + "/" + f, 0o600) } } }
                    disks = try files.map { f in
                        let h = try Hashing.sha256(file: tmp + "/" + f)
                        return .init(file: f, sha256: h.sha256, size: h.size)
                    }
                }
                let sbom = try SPDXDocument.json(
                    imageName: spec.name, packages: lock.packages.map {
                        SBOMPackage(name: $0.name, version: $0.version, architecture: $0.architecture, sha256: $0.sha256,
                                    downloadLocation: $0.filename, supplier: "Organization: Debian")
                    }, epoch: epoch)
                try AtomicOutput.write(sbom, to: tmp + "/sbom.spdx.json")
                var info = BuildInfo(
                    name: spec.name, kernelRelease: kernel.release, cmdline: spec.base.kernel.cmdline, sourceDateEpoch: epoch,
                    nics: spec.interfaces.map { .init(name: $0.name.value, mac: $0.mac?.description) },
                    artifacts: [
                        .init(file: "initramfs.cpio.zst", sha256: initrd.sha256, size: initrd.size),
                        .init(file: "sbom.spdx.json", sha256: Hashing.sha256(sbom), size: sbom.count),
                        .init(file: "vmlinuz", sha256: vmlinuz.sha256, size: vmlinuz.size),
                    ] + hypervisor + disks,
                    inputs: try inputs(spec: spec, lockPath: lockPath, lock: lock, initBinary: initBinary, executables: executables),
                    layers: layers.map { .init(name: $0.name, sha256: $0.sha256, size: $0.size, reused: $0.reused) },
                    sizes: ["initramfs": initrd.size, "kernel": vmlinuz.size, "total": initrd.size + vmlinuz.size]
                        .merging(disks.map { ($0.file, $0.size) }) { $1 },
                    timings: [:])
                info.hypervisor = spec.xen.map { BuildInfo.Hypervisor(file: Hypervisor.file, cmdline: $0.cmdline) }
                if !spec.bridges.isEmpty {
                    info.bridges = spec.bridges.map { BuildInfo.Bridge(name: $0.name.value, members: $0.members.map(\.value)) }
                }
                info.timings = timings
                info.timings["total"] = (Date().timeIntervalSince(total) * 1000).rounded() / 1000
                try AtomicOutput.write(try info.encoded(), to: tmp + "/" + BuildInfo.fileName)
                return info
            }
        }
        return (outDir, info)
    }

    func inputs(spec: ApplianceSpec, lockPath: String, lock: LockFile, initBinary: String, executables: [(String, String)]) throws -> [BuildInfo.Input] {
        var out: [BuildInfo.Input] = [
            .init(kind: "manifest", name: spec.manifestPath, version: nil, sha256: try Hashing.sha256(file: spec.manifestPath).sha256),
            .init(kind: "base", name: spec.basePath, version: nil, sha256: try Hashing.sha256(file: spec.basePath).sha256),
            .init(kind: "lock", name: lockPath, version: nil, sha256: try Hashing.sha256(file: lockPath).sha256),
            .init(kind: "init", name: "kiln-init", version: nil, sha256: try Hashing.sha256(file: initBinary).sha256),
        ]
        out += try executables.map { .init(kind: "executable", name: $0.0, version: nil, sha256: try Hashing.sha256(file: $0.1).sha256) }
        out += lock.packages.map { .init(kind: "package", name: $0.name, version: $0.version, sha256: $0.sha256) }
        return out
    }

    /// kiln-init: `--init`, `$KILN_INIT`, or beside the running kiln binary.
    func findInit() throws -> String {
        var candidates: [String] = []
        if let explicit = options.initBinary { candidates.append(explicit) }
        if let env = ProcessInfo.processInfo.environment["KILN_INIT"] { candidates.append(env) }
        let me = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        candidates.append(me.appendingPathComponent("kiln-init").path)
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw BuildError.missingInit(searched: candidates)
        }
        return found
    }

    /// A Kiln guest executable besides kiln-init (`kiln-vpn`): `$KILN_VPN` (the name upper-cased without its
    /// `kiln-` prefix, after `KILN_`), or beside the running kiln binary, as Scripts/build leaves them.
    func findGuestExecutable(_ name: String) throws -> String {
        var candidates: [String] = []
        let variable = "KILN_" + name.dropFirst("kiln-".count).uppercased().replacingOccurrences(of: "-", with: "_")
        if let env = ProcessInfo.processInfo.environment[variable] { candidates.append(env) }
        let me = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        candidates.append(me.appendingPathComponent(name).path)
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw BuildError.missingExecutable(name: name, searched: candidates)
        }
        return found
    }
}

/// What the appliance's roles add to the image: their runtime config files and the services that read them.
struct RoleConfig {
    var files: [ImageFile] = []
    var services: [GuestService] = []

    init(_ spec: ApplianceSpec) throws {
        if let dhcp = spec.router?.dhcp {
            var addresses: [InterfaceName: [CIDR]] = [:]
            for i in spec.interfaces { addresses[i.name] = i.addresses }
            for v in spec.vlans { addresses[v.name] = v.addresses }
            for b in spec.bridges { addresses[b.name] = b.addresses }
            let config = try DHCPServerConfig.compile(dhcp, addresses: addresses)
            files.append(ImageFile(path: DHCPServerConfig.defaultPath, mode: 0o644, contents: Array(try KilnJSON.encode(config).pretty.utf8)))
            services.append(GuestService(name: "dhcp", argv: ["/sbin/kiln-init", "service", "dhcp", DHCPServerConfig.defaultPath]))
        }
        if let sw = spec.switch {
            files.append(ImageFile(path: Switch.defaultConfigPath, mode: 0o644, contents: Array(try KilnJSON.encode(sw).pretty.utf8)))
            services.append(GuestService(name: "switch", argv: ["/sbin/kiln-init", "service", "switch", Switch.defaultConfigPath]))
        }
        if let wanopt = spec.wanopt {
            files.append(ImageFile(path: WANOptConfig.defaultPath, mode: 0o644, contents: Array(try KilnJSON.encode(wanopt).pretty.utf8)))
            services.append(GuestService(name: "wanopt", argv: ["/sbin/kiln-init", "service", "wanopt", WANOptConfig.defaultPath]))
        }
        if let xen = spec.xen {
            files.append(ImageFile(path: XenHostConfig.defaultPath, mode: 0o644, contents: Array(try KilnJSON.encode(xen.config).pretty.utf8)))
            files.append(ImageFile(path: "/etc/xen/xl.conf", mode: 0o644, contents: Array(XenHostConfig.xlConf.utf8)))
            // `xl` on the PATH, where Debian's xen-utils-common puts it, for operators and `kiln deploy xen`.
            files.append(ImageFile(path: "/usr/sbin/xl", linkTo: xen.config.program("xl")))
            services.append(xen.service)
        }
        if let vpn = spec.vpn {
            // The keys: readable by root only, in the config layer (never in build.json or the logs).
            files.append(ImageFile(path: vpn.configPath, mode: 0o600, contents: Array(try KilnJSON.encode(vpn.config).pretty.utf8)))
            services.append(vpn.service)
        }
    }
}

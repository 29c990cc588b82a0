import Foundation
import KilnManifest
import KilnPackages
import Logging

/// Pins every package an appliance needs in `<manifest>.lock`, resolving against the repository only when
/// the lock is missing, does not cover the manifest, or an update was asked for.
public enum Locking {
    /// The package names the appliance needs: the kernel (its metapackage resolves to one versioned image
    /// package), the runtime packages with their dependencies, and the UEFI stub when a disk format is built.
    public static func wanted(_ spec: ApplianceSpec) -> [String] {
        spec.packages + (DiskFormats.needsStub(spec.base.formats ?? []) ? [UnifiedKernelImage.stubPackage] : [])
    }

    /// Reads the lock when it covers `spec`; otherwise (unless `offline`) resolves and writes a new one.
    public static func ensure(_ spec: ApplianceSpec, sources: [AptSource], cache: PackageCache, update: Bool, offline: Bool,
                              logger: Logger) throws -> (lock: LockFile, path: String, resolved: Bool) {
        let path = LockFile.path(forManifest: spec.manifestPath)
        if !update, FileManager.default.fileExists(atPath: path) {
            let lock = try LockFile.read(path)
            let pinned = Set(lock.packages.map(\.name))
            let missing = wanted(spec).filter { !pinned.contains($0) }
            let hasKernel = lock.packages.contains { $0.name.hasPrefix("linux-image-") && $0.name != spec.base.kernel.package }
            if missing.isEmpty && hasKernel { return (lock, path, false) }
            if offline { throw BuildError.lockOutdated(lock: path, missing: missing + (hasKernel ? [] : [spec.base.kernel.package])) }
        } else if offline {
            throw BuildError.lockOutdated(lock: path, missing: wanted(spec) + [spec.base.kernel.package])
        }
        logger.info("resolving packages against the repository", metadata: ["suites": "\(sources.flatMap(\.suites))"])
        let index = try RepositoryClient(sources: sources, cache: cache, logger: logger).loadIndex(architecture: spec.base.architecture ?? "amd64")
        var records = try index.resolve(wanted(spec), followDepends: true)
        records += try kernelRecords(spec.base.kernel.package, index: index)
        var seen = Set<String>()
        records = records.filter { seen.insert($0.name).inserted }.sorted { $0.name < $1.name }
        let lock = LockFile(index: index, records: records)
        try lock.write(to: path)
        return (lock, path, true)
    }

    /// The kernel metapackage's versioned image package alone: its own Depends (initramfs tools, kmod) are
    /// for installing on a disk and have no place in an appliance image.
    static func kernelRecords(_ meta: String, index: PackageIndex) throws -> [PackageRecord] {
        guard let record = index.best(named: meta) else { return try index.resolve([meta], followDepends: false) }
        if meta.hasPrefix("linux-image-") && record.depends.isEmpty { return [record] }
        let image = record.depends.flatMap { $0 }.map(\.name).first { $0.hasPrefix("linux-image-") }
        guard let image else { throw BuildError.kernel(package: meta, reason: "depends on no linux-image-* package") }
        return try index.resolve([image], followDepends: false)
    }
}

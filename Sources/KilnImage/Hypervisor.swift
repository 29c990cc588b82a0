import Foundation

/// The hypervisor of a Xen host image, taken from Debian's `xen-hypervisor-*` package: `/boot/xen-<v>.gz`
/// decompressed, a multiboot ELF that QEMU's `-kernel` (and GRUB's `multiboot`) start with dom0's kernel and
/// initramfs as modules.
enum Hypervisor {
    static let file = "xen"

    /// Writes the decompressed hypervisor to `path`; returns its hash and size.
    static func extract(tree: String, package: String, to path: String) throws -> (sha256: String, size: Int) {
        let boot = tree + "/boot"
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: boot)) ?? [])
            .filter { $0.hasPrefix("xen-") && $0.hasSuffix(".gz") }.sorted()
        guard let name = names.first, names.count == 1 else {
            throw BuildError.kernel(package: package, reason: names.isEmpty ? "no /boot/xen-*.gz in the package"
                                                                            : "several hypervisors in /boot: \(names.joined(separator: ", "))")
        }
        let reader = try ArchiveReader(path: boot + "/" + name, formats: .raw)
        guard try reader.nextEntry() != nil else {
            throw BuildError.kernel(package: package, reason: "/boot/\(name) is empty")
        }
        try AtomicOutput.write(try reader.readAll(limit: 64 << 20), to: path)
        return try Hashing.sha256(file: path)
    }
}

import Glibc
import KilnManifest
import KilnPackages

/// The UEFI disk formats: a FAT EFI system partition holding the unified kernel image at the removable-media
/// path, inside a GPT disk (`disk.raw`), converted to compressed qcow2 (`disk.qcow2`) and to a hybrid ISO
/// (`disk.iso`). Every byte is a function of the inputs: GUIDs and the FAT serial come from `seed`, times from
/// `epoch`.
public enum DiskFormats {
    public static let rawFile = "disk.raw"
    public static let qcow2File = "disk.qcow2"
    public static let isoFile = "disk.iso"
    /// Where UEFI looks for a bootloader on removable media (UEFI 2.10 §3.5.1.1).
    static let bootPath = "EFI/BOOT/BOOTX64.EFI"

    /// Whether `formats` needs the UEFI stub (every format but the bare kernel + initramfs pair).
    public static func needsStub(_ formats: [ImageFormat]) -> Bool {
        formats.contains { $0 != .kernelInitrd }
    }

    /// The file name each format is written to, nil for the kernel + initramfs pair.
    public static func fileName(_ format: ImageFormat) -> String? {
        switch format {
        case .kernelInitrd: return nil
        case .raw: return rawFile
        case .qcow2: return qcow2File
        case .iso: return isoFile
        }
    }

    /// Writes the disk formats among `formats` into `directory` and returns their file names. The raw disk is
    /// always built when another disk format is asked for (they are made from it), and removed afterwards
    /// when raw itself was not asked for. `scratch` is an empty directory this may fill and leaves behind.
    public static func write(_ formats: [ImageFormat], uki: [UInt8], directory: String, scratch: String,
                             seed: String, epoch: Int) throws -> [String] {
        guard needsStub(formats) else { return [] }
        let esp = try espImage(uki: uki, scratch: scratch, seed: seed, epoch: epoch)
        let disk = GPTDisk(seed: seed).image(partition: esp)
        let raw = directory + "/" + rawFile
        try FileSystem.writeFile(raw, disk, sync: false)
        var written: [String] = []
        if formats.contains(.raw) { written.append(rawFile) }
        if formats.contains(.qcow2) {
            // One coroutine (-m 1): compressed clusters are then allocated in disk order, so the file is reproducible.
            try run(["qemu-img", "convert", "-q", "-m", "1", "-c", "-f", "raw", "-O", "qcow2", raw, directory + "/" + qcow2File])
            written.append(qcow2File)
        }
        if formats.contains(.iso) {
            let espPath = scratch + "/esp.img"
            try FileSystem.writeFile(espPath, esp, sync: false)
            try iso(esp: espPath, output: directory + "/" + isoFile, scratch: scratch, seed: seed, epoch: epoch)
            written.append(isoFile)
        }
        if !formats.contains(.raw) { _ = unlink(raw) }
        return written
    }

    /// A FAT file system with the image at `EFI/BOOT/BOOTX64.EFI`, sized to it plus room for the FAT tables and
    /// directories. mtools writes it without root or loop devices; `SOURCE_DATE_EPOCH`, a fixed serial and
    /// file times set to the epoch make it reproducible.
    static func espImage(uki: [UInt8], scratch: String, seed: String, epoch: Int) throws -> [UInt8] {
        let file = scratch + "/BOOTX64.EFI"
        try FileSystem.writeFile(file, uki, sync: false)
        var times = [timespec(tv_sec: epoch, tv_nsec: 0), timespec(tv_sec: epoch, tv_nsec: 0)]
        try FileSystem.check("utimensat", file) { utimensat(AT_FDCWD, file, &times, 0) }
        // FAT16 with 2 KiB clusters: the tables take 4 bytes per cluster (two copies); 256 KiB covers the boot
        // sector, root directory, EFI/BOOT and cluster rounding.
        let clusterBytes = 2048
        let slack = 256 * 1024 + 4 * (uki.count / clusterBytes + 1)
        let sectors = (uki.count + slack + 32 * 1024 - 1) / (32 * 1024) * 64  // whole 32 KiB tracks
        let image = scratch + "/esp.fat"
        let serial = Hashing.hex(Hashing.digest(Array((seed + "/fat").utf8)).prefix(4))
        try run(["mformat", "-i", image, "-C", "-T", String(sectors), "-h", "2", "-s", "32", "-c", "4",
                 "-N", serial, "-v", "KILN-ESP", "::"], epoch: epoch)
        try run(["mmd", "-i", image, "::/EFI", "::/EFI/BOOT"], epoch: epoch)
        try run(["mcopy", "-i", image, "-m", file, "::/" + bootPath], epoch: epoch)
        let bytes = try FileSystem.readFile(image)
        guard bytes.count == sectors * GPTDisk.sectorSize else {
            throw ImageError.tool(name: "mformat", message: "\(image) is \(bytes.count) bytes, expected \(sectors) sectors")
        }
        return bytes
    }

    /// An ISO 9660 image whose El Torito EFI boot image is the ESP, with a GPT appended (xorriso's
    /// -append_partition) so the same file also boots as a disk.
    static func iso(esp: String, output: String, scratch: String, seed: String, epoch: Int) throws {
        let root = scratch + "/iso-root"
        try FileSystem.makeDirectories(root)
        var times = [timespec(tv_sec: epoch, tv_nsec: 0), timespec(tv_sec: epoch, tv_nsec: 0)]
        try FileSystem.check("utimensat", root) { utimensat(AT_FDCWD, root, &times, 0) }
        // Rock Ridge would record the building user's uid and gid: files of the ISO belong to root whoever builds.
        try run(["xorriso", "-no_rc", "-abort_on", "FAILURE", "-outdev", output, "-volid", "KILN", "-uid", "0", "-gid", "0",
                 "-map", root, "/",
                 "-append_partition", "2", "0xef", esp,
                 "-boot_image", "any", "efi_path=--interval:appended_partition_2:all::",
                 "-boot_image", "any", "platform_id=0xef", "-boot_image", "any", "emul_type=no_emulation",
                 "-boot_image", "any", "appended_part_as=gpt", "-boot_image", "any", "partition_offset=16"],
                epoch: epoch)
    }

    /// Runs a tool with a fixed environment (UTC, the epoch, no user mtools config); a non-zero exit is an error.
    static func run(_ arguments: [String], epoch: Int = 0) throws {
        let env = ["env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TZ=UTC", "LC_ALL=C", "SOURCE_DATE_EPOCH=\(epoch)",
                   "MTOOLS_SKIP_CHECK=1", "MTOOLSRC=/dev/null"]
        let result: Subprocess.Result
        do { result = try Subprocess.run(env + arguments, timeout: 300) } catch {
            throw ImageError.tool(name: arguments[0], message: "\(error)")
        }
        guard result.status == 0 else {
            let detail = result.stderr.isEmpty ? result.stdout : result.stderr
            throw ImageError.tool(name: arguments[0], message: "exit \(result.status): \(detail.suffix(600))"
                                  + (result.status == 127 ? " (install it with Scripts/install-deps)" : ""))
        }
    }
}

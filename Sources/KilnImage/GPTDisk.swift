/// A GPT disk holding one EFI system partition (UEFI 2.10 §5.2–§5.3): protective MBR, primary header and entry
/// array at LBA 1–33, the partition at 1 MiB, the backup array and header in the last 33 sectors. GUIDs come
/// from a seed (the lock file's hash and the image name), so the same inputs give the same bytes.
public struct GPTDisk {
    public static let sectorSize = 512
    static let entryCount = 128
    static let entrySize = 128
    static let arraySectors = entryCount * entrySize / sectorSize
    /// Partition start (LBA 2048 = 1 MiB), and the granule the disk size is rounded up to.
    public static let alignmentSectors = 2048
    /// C12A7328-F81F-11D2-BA4B-00A0C93EC93B, the EFI system partition type.
    static let espType: [UInt8] = guidBytes("C12A7328-F81F-11D2-BA4B-00A0C93EC93B")

    public var diskGUID: [UInt8]
    public var partitionGUID: [UInt8]
    public var partitionName = "EFI System Partition"

    /// GUIDs derived from `seed` (RFC 4122 version 4 layout over SHA-256 bytes, so tools accept them).
    public init(seed: String) {
        diskGUID = Self.derivedGUID(seed + "/disk")
        partitionGUID = Self.derivedGUID(seed + "/esp")
    }

    /// Total sectors of a disk holding a partition of `partitionSectors`.
    public static func diskSectors(partitionSectors: Int) -> Int {
        let needed = alignmentSectors + partitionSectors + arraySectors + 1
        return (needed + alignmentSectors - 1) / alignmentSectors * alignmentSectors
    }

    /// The whole disk image with `partition` (a multiple of 512 bytes) as its ESP.
    public func image(partition: [UInt8]) -> [UInt8] {
        precondition(partition.count % Self.sectorSize == 0, "partition size must be whole sectors")
        let partitionSectors = partition.count / Self.sectorSize
        let total = Self.diskSectors(partitionSectors: partitionSectors)
        var disk = [UInt8](repeating: 0, count: total * Self.sectorSize)
        let first = Self.alignmentSectors, last = first + partitionSectors - 1
        disk.replaceSubrange(first * Self.sectorSize..<(last + 1) * Self.sectorSize, with: partition)

        disk.replaceSubrange(0..<Self.sectorSize, with: Self.protectiveMBR(totalSectors: total))
        let entries = entryArray(firstLBA: first, lastLBA: last)
        let entriesCRC = CRC32.checksum(entries)
        let firstUsable = 2 + Self.arraySectors, lastUsable = total - 2 - Self.arraySectors
        let primary = header(myLBA: 1, alternateLBA: total - 1, entriesLBA: 2, firstUsable: firstUsable,
                             lastUsable: lastUsable, entriesCRC: entriesCRC)
        let backup = header(myLBA: total - 1, alternateLBA: 1, entriesLBA: total - 1 - Self.arraySectors,
                            firstUsable: firstUsable, lastUsable: lastUsable, entriesCRC: entriesCRC)
        disk.replaceSubrange(Self.sectorSize..<Self.sectorSize + primary.count, with: primary)
        disk.replaceSubrange(2 * Self.sectorSize..<2 * Self.sectorSize + entries.count, with: entries)
        let backupArray = (total - 1 - Self.arraySectors) * Self.sectorSize
        disk.replaceSubrange(backupArray..<backupArray + entries.count, with: entries)
        let backupHeader = (total - 1) * Self.sectorSize
        disk.replaceSubrange(backupHeader..<backupHeader + backup.count, with: backup)
        return disk
    }

    /// One partition record of type 0xEE covering the disk (UEFI 2.10 §5.2.3).
    static func protectiveMBR(totalSectors: Int) -> [UInt8] {
        var mbr = [UInt8](repeating: 0, count: sectorSize)
        let p = 446
        mbr[p + 1] = 0x00; mbr[p + 2] = 0x02; mbr[p + 3] = 0x00  // CHS of LBA 1
        mbr[p + 4] = 0xEE
        mbr[p + 5] = 0xFF; mbr[p + 6] = 0xFF; mbr[p + 7] = 0xFF
        mbr.setLE32(p + 8, 1)
        mbr.setLE32(p + 12, UInt32(min(totalSectors - 1, Int(UInt32.max))))
        mbr[510] = 0x55; mbr[511] = 0xAA
        return mbr
    }

    func entryArray(firstLBA: Int, lastLBA: Int) -> [UInt8] {
        var entries = [UInt8](repeating: 0, count: Self.entryCount * Self.entrySize)
        entries.replaceSubrange(0..<16, with: Self.espType)
        entries.replaceSubrange(16..<32, with: partitionGUID)
        entries.setLE64(32, UInt64(firstLBA))
        entries.setLE64(40, UInt64(lastLBA))
        for (i, unit) in partitionName.utf16.prefix(36).enumerated() { entries.setLE16(56 + 2 * i, unit) }
        return entries
    }

    func header(myLBA: Int, alternateLBA: Int, entriesLBA: Int, firstUsable: Int, lastUsable: Int, entriesCRC: UInt32) -> [UInt8] {
        var h = [UInt8](repeating: 0, count: 92)
        h.replaceSubrange(0..<8, with: Array("EFI PART".utf8))
        h.setLE32(8, 0x0001_0000)
        h.setLE32(12, 92)
        h.setLE64(24, UInt64(myLBA))
        h.setLE64(32, UInt64(alternateLBA))
        h.setLE64(40, UInt64(firstUsable))
        h.setLE64(48, UInt64(lastUsable))
        h.replaceSubrange(56..<72, with: diskGUID)
        h.setLE64(72, UInt64(entriesLBA))
        h.setLE32(80, UInt32(Self.entryCount))
        h.setLE32(84, UInt32(Self.entrySize))
        h.setLE32(88, entriesCRC)
        h.setLE32(16, CRC32.checksum(h))
        return h
    }

    /// 16 GUID bytes from a hash of `seed`, with the version 4 and RFC 4122 variant bits set.
    static func derivedGUID(_ seed: String) -> [UInt8] {
        var bytes = Array(Hashing.digest(Array(seed.utf8)).prefix(16))
        bytes[7] = bytes[7] & 0x0F | 0x40  // time_hi_and_version is stored little-endian: its high byte is 7
        bytes[8] = bytes[8] & 0x3F | 0x80
        return bytes
    }

    /// The on-disk bytes of a GUID written as text (first three fields little-endian).
    static func guidBytes(_ text: String) -> [UInt8] {
        let hex = Array(text.utf8).filter { $0 != UInt8(ascii: "-") }
        var raw = [UInt8]()
        for i in stride(from: 0, to: hex.count, by: 2) {
            raw.append(UInt8(String(decoding: hex[i..<i + 2], as: UTF8.self), radix: 16) ?? 0)
        }
        return Array(raw[0..<4].reversed()) + Array(raw[4..<6].reversed()) + Array(raw[6..<8].reversed()) + Array(raw[8..<16])
    }

    /// Text form of on-disk GUID bytes (as `sgdisk` prints it).
    public static func guidText(_ b: [UInt8]) -> String {
        let ordered = Array(b[0..<4].reversed()) + Array(b[4..<6].reversed()) + Array(b[6..<8].reversed()) + Array(b[8..<16])
        let hex = Hashing.hex(ordered).uppercased()
        let c = Array(hex)
        return [c[0..<8], c[8..<12], c[12..<16], c[16..<20], c[20..<32]].map { String($0) }.joined(separator: "-")
    }
}

/// CRC-32 (IEEE 802.3, reflected, as zlib and the GPT use).
public enum CRC32 {
    static let table: [UInt32] = (0..<256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    public static func checksum(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = table[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }
}

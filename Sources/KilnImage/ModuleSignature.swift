/// The signature a distribution appends to each kernel module: the module's ELF bytes, then a PKCS#7 blob of
/// `sig_len` bytes, a 12-byte `struct module_signature` (its last field `sig_len`, big-endian) and the marker
/// "~Module signature appended~\n".
enum ModuleSignature {
    static let marker = Array("~Module signature appended~\n".utf8)
    static let trailerSize = 12

    /// Whether `bytes` end with the signature marker.
    static func isSigned(_ bytes: [UInt8]) -> Bool {
        bytes.count >= marker.count && bytes.suffix(marker.count).elementsEqual(marker)
    }

    /// The module without its signature; unsigned modules come back unchanged. A marker whose length field
    /// points outside the file, or whose remainder is not an ELF file, is an error naming the module.
    static func stripped(_ bytes: [UInt8], module: String) throws(ImageError) -> [UInt8] {
        guard bytes.count >= marker.count + trailerSize, isSigned(bytes) else { return bytes }
        let lengthAt = bytes.count - marker.count - 4
        let signatureLength = bytes[lengthAt..<(lengthAt + 4)].reduce(0) { $0 << 8 | Int($1) }
        let end = bytes.count - marker.count - trailerSize - signatureLength
        guard end >= 4, bytes[0..<4].elementsEqual([0x7f, 0x45, 0x4c, 0x46]) else {
            throw ImageError.badArchive(archive: module, reason: "module signature of \(signatureLength) bytes does not fit the file (\(bytes.count) bytes)")
        }
        return Array(bytes[0..<end])
    }
}

import Glibc
import KilnConfig

/// The lease file: one JSON document per interface, rewritten atomically after bindings change.
/// A file that cannot be read as a whole is moved aside to `<path>.corrupt` and the server starts empty.
public enum DHCPLeaseStore {
    static let version = 1

    struct Record: Codable {
        var client: String
        var mac: MACAddress?
        var address: String
        var expiry: Int64
        var state: DHCPLease.State
        var hostname: String?
    }
    struct File: Codable {
        var version: Int
        var interface: String
        var leases: [Record]
    }

    /// Why lease bytes were rejected.
    public struct CorruptFile: Error, CustomStringConvertible {
        public var description: String
    }

    /// The table as file bytes; offers are not persisted (they last seconds).
    public static func encode(_ table: DHCPLeaseTable, interface: InterfaceName) -> [UInt8] {
        let records = table.leases.filter { $0.state != .offered }.map {
            Record(client: hex($0.clientKey), mac: $0.mac, address: $0.address.description, expiry: $0.expiry, state: $0.state, hostname: $0.hostname)
        }
        let file = File(version: version, interface: interface.value, leases: records)
        // Encoding plain strings and numbers cannot fail; an empty document would be caught on load.
        let json = (try? KilnJSON.encode(file)) ?? .null
        return Array(json.pretty.utf8)
    }

    /// Rebuilds a table from file bytes. Records that no longer fit the pool (the manifest changed) are dropped
    /// and named in `dropped`; anything unreadable throws `CorruptFile`.
    public static func decode(_ bytes: [UInt8], into empty: DHCPLeaseTable) throws(CorruptFile) -> (table: DHCPLeaseTable, dropped: [String]) {
        let file: File
        do { file = try KilnJSON.decode(File.self, from: bytes) } catch { throw CorruptFile(description: "\(error)") }
        guard file.version == version else { throw CorruptFile(description: "version \(file.version), expected \(version)") }
        var table = empty
        var dropped: [String] = []
        for (i, r) in file.leases.enumerated() {
            let address: IPv4Address
            do { address = try IPv4Address(r.address) } catch { throw CorruptFile(description: "leases[\(i)].address: \(error.message)") }
            guard let key = unhex(r.client) else { throw CorruptFile(description: "leases[\(i)].client: '\(r.client)' is not hex") }
            guard r.state != .offered else { throw CorruptFile(description: "leases[\(i)].state: offers are never stored") }
            guard r.state == .declined ? key.isEmpty : !key.isEmpty else {
                throw CorruptFile(description: "leases[\(i)].client: must be empty exactly for a declined address")
            }
            let lease = DHCPLease(clientKey: key, mac: r.mac, address: address, expiry: r.expiry, state: r.state, hostname: r.hostname)
            if !table.restore(lease) { dropped.append("\(address) (\(r.mac.map(\.description) ?? r.client))") }
        }
        return (table, dropped)
    }

    /// Loads `path` into a fresh table; a missing file is an empty table, a corrupt one is logged and set aside.
    public static func load(path: String, into empty: DHCPLeaseTable, log: (String) -> Void) -> DHCPLeaseTable {
        let bytes: [UInt8]
        do { bytes = try readFile(path) } catch {
            if error.errno != ENOENT { log("cannot read lease file: \(error); starting with no leases") }
            return empty
        }
        do {
            let (table, dropped) = try decode(bytes, into: empty)
            for d in dropped { log("lease file \(path): dropped \(d): outside the pool or conflicting") }
            log("loaded \(table.byAddress.count) leases from \(path)")
            return table
        } catch {
            let aside = path + ".corrupt"
            renameFile(path, aside)
            log("lease file \(path) is corrupt (\(error.description)); moved to \(aside), starting with no leases")
            return empty
        }
    }

    /// Writes the table atomically.
    public static func save(_ table: DHCPLeaseTable, interface: InterfaceName, path: String) throws(FileError) {
        try writeFileAtomically(path, encode(table, interface: interface))
    }
}

private func unhex(_ s: String) -> [UInt8]? {
    let u = Array(s.utf8)
    guard u.count % 2 == 0 else { return nil }
    func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: c - 0x30
        case 0x61...0x66: c - 0x61 + 10
        case 0x41...0x46: c - 0x41 + 10
        default: nil
        }
    }
    var out: [UInt8] = []
    out.reserveCapacity(u.count / 2)
    var i = 0
    while i < u.count {
        guard let h = nibble(u[i]), let l = nibble(u[i + 1]) else { return nil }
        out.append(h << 4 | l); i += 2
    }
    return out
}

/// Where a virtio NIC's frames go on the host side.
public enum NICBackend: Sendable, Equatable, Codable {
    /// A TAP device (created beforehand or by QEMU), `script=no,downscript=no`: the harness configures it.
    case tap(ifname: String)
    /// Listen on a unix stream socket; the peer VM connects with `.streamConnect` (QEMU 7.2 `-netdev stream`).
    /// QEMU 7.2 has no reconnect: start the listening VM first.
    case streamListen(path: String)
    /// Connect to a VM listening with `.streamListen` on the same path.
    case streamConnect(path: String)
    /// Unix datagram sockets, one per side (each VM's `local` is the other's `remote`): no start order, no root.
    case dgram(localPath: String, remotePath: String)
    /// Not connected to anything (a lone hub port): the guest sees a NIC with no carrier partner.
    case unconnected
}

/// One virtio-net NIC of a VM: a netdev id, a fixed MAC and a fixed PCI slot, so guest interface naming by MAC
/// or by PCI order is stable from boot to boot.
public struct NIC: Sendable, Equatable, Codable {
    /// The netdev id (`[A-Za-z][A-Za-z0-9_-]*`), e.g. `wan`.
    public var id: String
    /// A unicast MAC, `52:54:00:00:01:01`.
    public var mac: String
    public var backend: NICBackend
    /// The PCI slot; nil means 0x03 + the NIC's position in the list.
    public var slot: Int?

    public init(id: String, mac: String, backend: NICBackend, slot: Int? = nil) {
        self.id = id
        self.mac = mac
        self.backend = backend
        self.slot = slot
    }

    /// The `-netdev` value for this NIC (hub ports get `hubid`, one hub per unconnected NIC).
    func netdevValue(hubID: Int) -> String {
        switch backend {
        case .tap(let ifname):
            return "tap,id=\(id),ifname=\(qemuEscape(ifname)),script=no,downscript=no"
        case .streamListen(let path):
            return "stream,id=\(id),server=on,addr.type=unix,addr.path=\(qemuEscape(path))"
        case .streamConnect(let path):
            return "stream,id=\(id),server=off,addr.type=unix,addr.path=\(qemuEscape(path))"
        case let .dgram(local, remote):
            return "dgram,id=\(id),local.type=unix,local.path=\(qemuEscape(local)),"
                + "remote.type=unix,remote.path=\(qemuEscape(remote))"
        case .unconnected:
            return "hubport,id=\(id),hubid=\(hubID)"
        }
    }

    /// The `-device` value; `romfile=` drops the iPXE option ROM (no network boot, and it costs boot time).
    func deviceValue(slot: Int) -> String {
        "virtio-net-pci,netdev=\(id),mac=\(mac.lowercased()),addr=\(hexSlot(slot)),romfile="
    }

    /// Nil when valid, else what is wrong.
    func problem() -> String? {
        if !isValidQEMUId(id) { return "NIC id \"\(id)\" must be a letter followed by letters, digits, '-' or '_'" }
        if !isUnicastMAC(mac) { return "NIC \(id): MAC \"\(mac)\" is not a unicast address like 52:54:00:12:34:56" }
        if case .tap(let ifname) = backend, ifname.isEmpty || ifname.utf8.count > 15 || ifname.contains("/") {
            return "NIC \(id): TAP name \"\(ifname)\" must be 1–15 characters without '/'"
        }
        return nil
    }
}

/// Doubles commas, QEMU's escape inside option values.
func qemuEscape(_ value: String) -> String { value.replacingAll(",", with: ",,") }

func hexSlot(_ slot: Int) -> String {
    let digits = String(slot, radix: 16)
    return "0x" + (digits.count < 2 ? "0" + digits : digits)
}

func isValidQEMUId(_ id: String) -> Bool {
    guard let first = id.unicodeScalars.first, first.properties.isAlphabetic, first.isASCII else { return false }
    return id.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "-" || $0 == "_") }
}

func isUnicastMAC(_ mac: String) -> Bool {
    let parts = mac.split(separator: ":", omittingEmptySubsequences: false)
    guard parts.count == 6 else { return false }
    var octets: [UInt8] = []
    for part in parts {
        guard part.count == 2, let octet = UInt8(part, radix: 16) else { return false }
        octets.append(octet)
    }
    return octets[0] & 1 == 0
}

extension String {
    func replacingAll(_ target: Character, with replacement: String) -> String {
        var out = ""
        for character in self { if character == target { out += replacement } else { out.append(character) } }
        return out
    }
}

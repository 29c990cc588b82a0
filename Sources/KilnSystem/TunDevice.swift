import CKilnShims
import Glibc

/// A TUN (layer 3) or TAP (layer 2) interface created through /dev/net/tun, owned with its descriptor.
///
/// The interface lives as long as the descriptor unless `persistent` was asked for. Packets are read and
/// written whole, one per call, without the packet-information header (IFF_NO_PI).
public final class TunDevice {
    /// The kernel's name for the interface (the requested one, or the one it picked for a `%d` pattern).
    public let name: String
    /// True for TAP (Ethernet frames), false for TUN (IP packets).
    public let isTap: Bool
    /// The descriptor packets are read from and written to.
    public let fd: FileDescriptor

    private init(name: String, isTap: Bool, fd: FileDescriptor) {
        self.name = name
        self.isTap = isTap
        self.fd = fd
    }

    /// Creates (or attaches to) the interface `name` (at most 15 bytes; `"tun%d"` lets the kernel number it).
    public static func open(name: String, tap: Bool, persistent: Bool = false) throws(Errno) -> TunDevice {
        let bytes = Array(name.utf8)
        guard !bytes.isEmpty, bytes.count < 16 else {
            throw Errno(EINVAL, operation: "create \(tap ? "TAP" : "TUN") device", subject: name)
        }
        var buffer = [CChar](repeating: 0, count: 16)
        for (i, byte) in bytes.enumerated() { buffer[i] = CChar(bitPattern: byte) }
        let fd = try shimCall("create \(tap ? "TAP" : "TUN") device", name) {
            kiln_tun_open(&buffer, tap ? 1 : 0, persistent ? 1 : 0)
        }
        let actual = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return TunDevice(name: actual, isTap: tap, fd: FileDescriptor(adopting: fd))
    }

    /// Reads one packet (or frame) into `buffer`; returns its length.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int {
        try fd.read(into: buffer)
    }

    /// Writes one packet (or frame).
    public func write(_ packet: UnsafeRawBufferPointer) throws(Errno) {
        _ = try fd.write(packet)
    }
}

import CKilnShims
import Glibc
import KilnSystem

/// The kernel side of one port: an AF_PACKET socket with a TPACKET_V3 RX ring on a NIC, or a TAP device
/// (the internal port), plus the fixed transmit batch frames for this port are queued in.
///
/// All memory is set up here once; the per-frame path touches only the ring, the TAP buffers and the batch.
final class PortIO {
    enum Kind { case ring, tap }

    let name: String
    let kind: Kind
    let fd: FileDescriptor
    let tx: OpaquePointer
    /// The RX ring (ring ports) or the TAP read buffers (`tapFrames` × `tapFrameSize`).
    let memory: UnsafeMutableRawPointer
    let memoryLength: Int
    let blockSize: Int
    let blockCount: Int
    var currentBlock = 0

    static let tapFrames = 32
    static let tapFrameSize = 2048 + 64

    /// Opens a ring port on interface `name` in the calling thread's network namespace and brings it up.
    /// Blocks of 256 KiB: a block must hold a whole GSO segment (up to 64 KiB plus headers) as well as many small
    /// frames.
    init(ring name: String, blockSize: Int = 1 << 18, blockCount: Int = 64) throws(Errno) {
        let index = try shimCall("find interface", name) { kiln_if_index(name) }
        // Up first: binding a packet socket to a down interface leaves ENETDOWN pending on the socket, and the
        // first send would return it (and lose its frames).
        try Self.setUp(name)
        var map: UnsafeMutableRawPointer?
        let raw = try shimCall("open packet ring on", name) {
            kiln_packet_open(index, UInt32(blockSize), UInt32(blockCount), 2048, 2, &map)
        }
        guard let map, let batch = kiln_txbatch_new(1) else {
            _ = Glibc.close(raw)
            throw Errno(ENOMEM, operation: "allocate port buffers for", subject: name)
        }
        self.name = name
        kind = .ring
        fd = FileDescriptor(adopting: raw)
        tx = batch
        memory = map
        memoryLength = blockSize * blockCount
        self.blockSize = blockSize
        self.blockCount = blockCount
        var pending: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        _ = getsockopt(raw, SOL_SOCKET, SO_ERROR, &pending, &length)  // clears an error left from a link flap
    }

    /// Creates the TAP device `name` (the box's own stack on the switch) and brings it up.
    /// Frames are read and written with a virtio-net header (IFF_VNET_HDR), as on ring ports.
    init(tap name: String) throws(Errno) {
        var buffer = [CChar](repeating: 0, count: 16)
        for (i, byte) in name.utf8.prefix(15).enumerated() { buffer[i] = CChar(bitPattern: byte) }
        let raw = try shimCall("create TAP device", name) { kiln_tap_open_vnet(&buffer) }
        let device = FileDescriptor(adopting: raw)
        guard let batch = kiln_txbatch_new(1) else { throw Errno(ENOMEM, operation: "allocate port buffers for", subject: name) }
        self.name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        kind = .tap
        fd = device
        tx = batch
        memoryLength = Self.tapFrames * Self.tapFrameSize
        memory = UnsafeMutableRawPointer.allocate(byteCount: memoryLength, alignment: 64)
        blockSize = 0
        blockCount = 0
        try Self.setUp(self.name)
    }

    deinit {
        kiln_txbatch_free(tx)
        switch kind {
        case .ring: _ = kiln_packet_unmap(memory, memoryLength)
        case .tap: memory.deallocate()
        }
    }

    /// The RX block `index` of a ring port.
    @inline(__always)
    func block(_ index: Int) -> UnsafeMutableRawPointer { memory + index * blockSize }

    /// Queues a frame for sending on this port, sending the batch first when it is full.
    /// `vnet` is the frame's virtio-net header when it came from a ring port (GSO and checksum metadata).
    /// Returns how many frames were lost.
    @inline(__always)
    func enqueue(_ frame: UnsafeRawPointer, length: Int, action: TagAction, tci: UInt16, vnet: UnsafeRawPointer?) -> Int {
        let added = kiln_txbatch_add(tx, frame, UInt32(length), action.rawValue, tci, vnet)
        if added >= 0 { return 0 }
        guard added == -ENOBUFS else { return 1 }
        let failed = flush()
        return failed + (kiln_txbatch_add(tx, frame, UInt32(length), action.rawValue, tci, vnet) >= 0 ? 0 : 1)
    }

    /// Sends what is queued; returns how many frames the device refused.
    @inline(__always)
    func flush() -> Int {
        let queued = Int(kiln_txbatch_count(tx))
        guard queued > 0 else { return 0 }
        let sent = Int(kiln_txbatch_send(fd.rawValue, tx, kind == .tap ? 1 : 0))
        return sent < 0 ? queued : queued - sent
    }

    /// Sets IFF_UP (and for rings no more: promiscuity is a packet-socket membership that ends with the socket).
    private static func setUp(_ name: String) throws(Errno) {
        let sock = try systemCall("open control socket") { Glibc.socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
        defer { _ = Glibc.close(sock) }
        var req = ifreq()
        withUnsafeMutableBytes(of: &req.ifr_ifrn.ifrn_name) { raw in
            for (i, b) in name.utf8.prefix(15).enumerated() { raw[i] = b }
        }
        try systemCall("read flags of", name) { ioctl(sock, UInt(SIOCGIFFLAGS), &req) }
        req.ifr_ifru.ifru_flags |= Int16(IFF_UP)
        try systemCall("bring up", name) { ioctl(sock, UInt(SIOCSIFFLAGS), &req) }
    }
}

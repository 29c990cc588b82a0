import CKilnShims
import Glibc
import KilnSystem

/// The kernel side of one port: an AF_PACKET socket with a TPACKET_V3 RX ring on a NIC, or a TAP device
/// (the internal port), plus where frames for this port are queued: on a NIC, a transmit ring (AF_XDP in copy mode,
/// or a PACKET_TX_RING where AF_XDP is not available) for frames without offload metadata (nearly all of them) and a
/// sendmmsg batch on the RX socket, which carries virtio-net headers, for GSO segments, partial checksums and frames
/// larger than a ring slot; on a TAP, the batch alone.
///
/// All memory is set up here once; the per-frame path touches only the rings, the TAP buffers and the batch.
final class PortIO {
    enum Kind { case ring, tap }

    let name: String
    let kind: Kind
    let fd: FileDescriptor
    let tx: OpaquePointer
    /// The transmit ring (ring ports).
    let txRing: OpaquePointer?

    /// The kinds of transmit ring, in the order a ring port tries them.
    enum TransmitRing: Int32, CaseIterable, CustomStringConvertible {
        case xdp = 1     // KILN_TX_XDP
        case packet = 2  // KILN_TX_PACKET
        var description: String { self == .xdp ? "AF_XDP" : "PACKET_TX_RING" }
    }

    /// Which transmit ring the port got (nil: a TAP port).
    var transmitRing: TransmitRing? { txRing.flatMap { TransmitRing(rawValue: kiln_txring_kind($0)) } }

    /// Whether frames handed to the transmit ring wait there for the kernel (under backpressure): `flush()` sends them.
    var hasPendingTransmit: Bool { txRing.map { kiln_txring_pending($0) != 0 } ?? false }
    /// The RX ring (ring ports) or the TAP read buffers (`tapFrames` × `tapFrameSize`).
    let memory: UnsafeMutableRawPointer
    let memoryLength: Int
    let blockSize: Int
    let blockCount: Int
    var currentBlock = 0

    static let tapFrames = 32
    static let tapFrameSize = 2048 + 64
    /// Transmit ring slots: 2 KiB holds a full-size frame with a pushed tag (after a packet ring slot's 42 bytes of
    /// headers).
    static let txSlotSize: UInt32 = 2048
    static let txSlots: UInt32 = 512

    /// Opens a ring port on interface `name` in the calling thread's network namespace and brings it up.
    /// Blocks of 256 KiB: a block must hold a whole GSO segment (up to 64 KiB plus headers) as well as many small
    /// frames.
    /// `transmit`: the transmit rings to try, in order (AF_XDP first, then the packet ring, by default).
    init(ring name: String, blockSize: Int = 1 << 18, blockCount: Int = 64,
         transmit: [TransmitRing] = TransmitRing.allCases) throws(Errno) {
        let index = try shimCall("find interface", name) { kiln_if_index(name) }
        // Up first: binding a packet socket to a down interface leaves ENETDOWN pending on the socket, and the
        // first send would return it (and lose its frames).
        try Self.setUp(name)
        var map: UnsafeMutableRawPointer?
        let raw = try shimCall("open packet ring on", name) {
            kiln_packet_open(index, UInt32(blockSize), UInt32(blockCount), 2048, 2, &map)
        }
        let socket = FileDescriptor(adopting: raw)
        guard let map else { throw Errno(ENOMEM, operation: "map packet ring of", subject: name) }
        var error: Int32 = 0
        let kinds = transmit.reduce(Int32(0)) { $0 | $1.rawValue }
        guard let ring = kiln_txring_open(index, Self.txSlotSize, Self.txSlots, kinds, &error) else {
            _ = kiln_packet_unmap(map, blockSize * blockCount)
            throw Errno(-error, operation: "open transmit ring on", subject: name)
        }
        guard let batch = kiln_txbatch_new(1) else {
            _ = kiln_packet_unmap(map, blockSize * blockCount)
            kiln_txring_free(ring)
            throw Errno(ENOMEM, operation: "allocate port buffers for", subject: name)
        }
        self.name = name
        kind = .ring
        fd = socket
        tx = batch
        txRing = ring
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
        txRing = nil
        memoryLength = Self.tapFrames * Self.tapFrameSize
        memory = UnsafeMutableRawPointer.allocate(byteCount: memoryLength, alignment: 64)
        blockSize = 0
        blockCount = 0
        try Self.setUp(self.name)
    }

    deinit {
        kiln_txbatch_free(tx)
        kiln_txring_free(txRing)
        switch kind {
        case .ring: _ = kiln_packet_unmap(memory, memoryLength)
        case .tap: memory.deallocate()
        }
    }

    /// The RX block `index` of a ring port.
    @inline(__always)
    func block(_ index: Int) -> UnsafeMutableRawPointer { memory + index * blockSize }

    /// Queues a frame for sending on this port, sending first when the ring or batch is full.
    /// `vnet` is the frame's virtio-net header when it came from a ring port (GSO and checksum metadata).
    /// Frames leave in the order they were queued: switching between the ring and the batch sends the other first.
    /// Returns how many frames were lost.
    @inline(__always)
    func enqueue(_ frame: UnsafeRawPointer, length: Int, action: TagAction, tci: UInt16, vnet: UnsafeRawPointer?) -> Int {
        var lost = 0
        if let txRing {
            if Self.withoutOffload(vnet) {
                if kiln_txbatch_count(tx) > 0 { lost += sendBatch() }
                var added = kiln_txring_add(txRing, frame, UInt32(length), action.rawValue, tci)
                if added == -ENOBUFS {
                    lost += Int(kiln_txring_send(txRing))
                    if kiln_txring_wait(txRing) == 0 { added = kiln_txring_add(txRing, frame, UInt32(length), action.rawValue, tci) }
                }
                if added >= 0 { return lost }
                if added != -EMSGSIZE { return lost + 1 }
            }
            if kiln_txring_queued(txRing) > 0 { lost += Int(kiln_txring_send(txRing)) }
        }
        let added = kiln_txbatch_add(tx, frame, UInt32(length), action.rawValue, tci, vnet)
        if added >= 0 { return lost }
        guard added == -ENOBUFS else { return lost + 1 }
        lost += sendBatch()
        return lost + (kiln_txbatch_add(tx, frame, UInt32(length), action.rawValue, tci, vnet) >= 0 ? 0 : 1)
    }

    /// Sends what is queued; returns how many frames the device refused.
    @inline(__always)
    func flush() -> Int {
        (txRing.map { Int(kiln_txring_send($0)) } ?? 0) + sendBatch()
    }

    @inline(__always)
    private func sendBatch() -> Int {
        let queued = Int(kiln_txbatch_count(tx))
        guard queued > 0 else { return 0 }
        let sent = Int(kiln_txbatch_send(fd.rawValue, tx, kind == .tap ? 1 : 0))
        return sent < 0 ? queued : queued - sent
    }

    /// Whether a frame carries no offload metadata for the egress to act on (no GSO, no partial checksum), so it can
    /// go through the transmit ring, whose slots carry a virtio-net header without offloads.
    @inline(__always)
    static func withoutOffload(_ vnet: UnsafeRawPointer?) -> Bool {
        guard let vnet else { return true }
        let flags = vnet.load(as: UInt8.self), gsoType = vnet.load(fromByteOffset: 1, as: UInt8.self)
        return flags & 1 /* NEEDS_CSUM */ == 0 && gsoType == 0
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

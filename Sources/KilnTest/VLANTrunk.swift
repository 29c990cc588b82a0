import CKilnShims
import Foundation
import KilnSystem

/// A userspace 802.1Q switch for one VM NIC: the NIC's TAP is a trunk, each `vlan: N` host link is an access
/// port in VLAN N, and untagged (native) traffic goes on to the bridge of the NIC's other links.
///
/// Kiln needs it because a build host may have neither the 8021q module, nor bridge VLAN filtering, nor tc's
/// `vlan` action. One thread per trunk, entered into the fabric namespace, moves frames between AF_PACKET sockets
/// with fixed buffers and floods each frame to every port of its VLAN (no MAC learning: this is a test fabric).
/// Offload metadata (partial checksums, GSO) travels with each frame as a virtio-net header, so TCP segments and
/// a VM's checksum-offloaded UDP arrive whole and valid.
public final class VLANTrunk: @unchecked Sendable {
    /// How a port treats 802.1Q tags.
    public enum Mode: Equatable, Sendable, CustomStringConvertible {
        /// Every VLAN tagged and the native VLAN untagged: a VM NIC.
        case trunk
        /// The native VLAN only, untagged: the uplink to the bridge of a NIC's untagged links.
        case native
        /// One VLAN, untagged: a host's access link.
        case access(UInt16)

        public var description: String {
            switch self {
            case .trunk: return "trunk"
            case .native: return "native"
            case let .access(vid): return "access \(vid)"
            }
        }
    }

    /// One interface of the switch, in the switch's namespace.
    public struct Port: Equatable, Sendable {
        public var interface: String
        public var mode: Mode
        public init(interface: String, mode: Mode) { self.interface = interface; self.mode = mode }
    }

    /// What happens to a frame of some VLAN at an egress port.
    enum Egress: Equatable { case drop, untagged, tagged }

    /// The VLAN a frame belongs to when it enters through a port (0 = native), or nil when the port does not take it.
    /// A priority tag (VID 0) counts as untagged (IEEE 802.1Q §6.9.1).
    static func ingressVLAN(tci: UInt16?, on mode: Mode) -> UInt16? {
        let vid = (tci ?? 0) & 0x0fff
        switch mode {
        case .trunk: return vid
        case .native: return vid == 0 ? 0 : nil
        case let .access(n): return vid == 0 ? n : nil
        }
    }

    static func egress(vlan: UInt16, to mode: Mode) -> Egress {
        switch mode {
        case .trunk: return vlan == 0 ? .untagged : .tagged
        case .native: return vlan == 0 ? .untagged : .drop
        case let .access(n): return vlan == n ? .untagged : .drop
        }
    }

    /// Moves the offsets of a virtio-net header (little-endian, 10 bytes) by `delta` bytes inserted or removed
    /// right after the MAC addresses: the checksum start (when the kernel left the checksum to finish) and the
    /// header-length hint. Layout: flags u8, gso_type u8, hdr_len u16, gso_size u16, csum_start u16, csum_offset u16.
    static func shiftVirtioNetHeader(_ header: UnsafeMutableRawPointer, by delta: Int) {
        func shift(_ offset: Int) {
            let old = Int(UInt16(littleEndian: header.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
            let new = UInt16(clamping: max(0, old + delta))
            header.storeBytes(of: new.littleEndian, toByteOffset: offset, as: UInt16.self)
        }
        if header.load(fromByteOffset: 0, as: UInt8.self) & 1 != 0 { shift(6) }  // VIRTIO_NET_HDR_F_NEEDS_CSUM
        if header.loadUnaligned(fromByteOffset: 2, as: UInt16.self) != 0 { shift(2) }
    }

    /// The 802.1Q tag the kernel moved into packet metadata (PACKET_AUXDATA), from a recvmsg control buffer:
    /// `(tpid, tci)`, or nil when the frame arrived untagged.
    static func auxdataTag(_ control: UnsafeRawBufferPointer) -> (tpid: UInt16, tci: UInt16)? {
        let header = MemoryLayout<cmsghdr>.size, align = MemoryLayout<Int>.size
        var offset = 0
        while offset + header <= control.count {
            let c = control.loadUnaligned(fromByteOffset: offset, as: cmsghdr.self)
            let length = Int(c.cmsg_len)
            guard length >= header, offset + length <= control.count else { return nil }
            if c.cmsg_level == PacketSocket.level, c.cmsg_type == PacketSocket.auxdata, length >= header + 20 {
                // struct tpacket_auxdata: tp_status u32, tp_len, tp_snaplen, tp_mac u16, tp_net, tp_vlan_tci, tp_vlan_tpid
                let status = control.loadUnaligned(fromByteOffset: offset + header, as: UInt32.self)
                guard status & 0x10 != 0 else { return nil }  // TP_STATUS_VLAN_VALID
                let tci = control.loadUnaligned(fromByteOffset: offset + header + 16, as: UInt16.self)
                let tpid = status & 0x40 != 0 ? control.loadUnaligned(fromByteOffset: offset + header + 18, as: UInt16.self) : 0x8100
                return (tpid, tci)
            }
            offset += (length + align - 1) / align * align
        }
        return nil
    }

    public let namespace: String?
    public let ports: [Port]
    /// The relay thread's name (`/proc/<pid>/task/*/comm`), distinct per switch, so a leftover relay can be told apart.
    public let threadName: String
    private static let serial = NSLock()
    nonisolated(unsafe) private static var started = 0
    private let lock = NSLock()
    private var thread: JoinableThread?
    private var wakeWrite: Int32 = -1

    /// A switch over `ports`, run in the network namespace `/run/netns/<namespace>` (nil: the caller's).
    public init(namespace: String?, ports: [Port]) {
        self.namespace = namespace
        self.ports = ports
        threadName = VLANTrunk.serial.withLock {
            VLANTrunk.started += 1
            return "kiln-vlan-\(VLANTrunk.started % 100_000)"
        }
    }

    /// Opens a socket on every port and starts relaying; throws, with nothing left running, if a port cannot be opened.
    public func start() throws {
        try lock.withLock {
            guard thread == nil else { return }
            var fds: [Int32] = [-1, -1]
            let r = kiln_pipe_cloexec(&fds)
            guard r == 0 else { throw TestError.environment("VLAN trunk: pipe: \(String(cString: strerror(-r)))") }
            let relay = Relay(namespace: namespace, ports: ports, wakeRead: fds[0], threadName: threadName)
            let tid: JoinableThread
            do { tid = try JoinableThread("VLAN trunk: start the relay thread") { relay.run() } } catch {
                close(fds[0]); close(fds[1])
                throw TestError.environment("\(error)")
            }
            relay.opened.wait()
            if let problem = relay.problem {
                tid.join()
                close(fds[0]); close(fds[1])
                throw TestError.environment("VLAN trunk\(namespace.map { " in namespace \($0)" } ?? ""): \(problem)")
            }
            thread = tid
            wakeWrite = fds[1]
        }
    }

    /// Wakes the relay thread, waits for it to close its sockets and exit. Safe to call more than once.
    public func stop() {
        lock.withLock {
            guard let tid = thread else { return }
            var byte: UInt8 = 1
            _ = write(wakeWrite, &byte, 1)
            tid.join()
            close(wakeWrite)
            thread = nil
            wakeWrite = -1
        }
    }

    deinit { stop() }
}

/// The relay thread's state: one socket per port, and buffers allocated once.
private final class Relay: @unchecked Sendable {
    let namespace: String?
    let ports: [VLANTrunk.Port]
    let wakeRead: Int32
    let threadName: String
    let opened = DispatchSemaphore(value: 0)
    var problem: String?

    private static let vnetLength = 10, capacity = 1 << 18, controlCapacity = 128
    private var fds: [Int32] = []
    private var modes: [VLANTrunk.Mode] = []
    private let buffer = UnsafeMutableRawPointer.allocate(byteCount: Relay.capacity, alignment: 16)
    private let control = UnsafeMutableRawPointer.allocate(byteCount: Relay.controlCapacity, alignment: 16)
    private let address = UnsafeMutableRawPointer.allocate(byteCount: PacketSocket.addressLength, alignment: 8)
    private let vnetOut = UnsafeMutableRawPointer.allocate(byteCount: 16, alignment: 16)
    private let tag = UnsafeMutableRawPointer.allocate(byteCount: 4, alignment: 4)
    private let receiveVector = UnsafeMutablePointer<iovec>.allocate(capacity: 1)
    private let sendVector = UnsafeMutablePointer<iovec>.allocate(capacity: 4)
    private let receiveMessage = UnsafeMutablePointer<msghdr>.allocate(capacity: 1)
    private let sendMessage = UnsafeMutablePointer<msghdr>.allocate(capacity: 1)

    init(namespace: String?, ports: [VLANTrunk.Port], wakeRead: Int32, threadName: String) {
        self.namespace = namespace; self.ports = ports; self.wakeRead = wakeRead; self.threadName = threadName
        receiveVector.pointee = iovec(iov_base: buffer, iov_len: Relay.capacity)
        receiveMessage.pointee = msghdr()
        receiveMessage.pointee.msg_iov = receiveVector
        receiveMessage.pointee.msg_iovlen = 1
        sendMessage.pointee = msghdr()
        sendMessage.pointee.msg_iov = sendVector
        sendMessage.pointee.msg_iovlen = 4
    }

    deinit {
        for fd in fds { close(fd) }
        close(wakeRead)
        buffer.deallocate(); control.deallocate(); address.deallocate(); vnetOut.deallocate(); tag.deallocate()
        receiveVector.deallocate(); sendVector.deallocate(); receiveMessage.deallocate(); sendMessage.deallocate()
    }

    func run() {
        // Named so a leftover relay would show in /proc/<pid>/task/*/comm.
        _ = try? threadName.write(toFile: "/proc/thread-self/comm", atomically: false, encoding: .utf8)
        do {
            if let namespace {
                let r = kiln_setns_path("/run/netns/\(namespace)", 0x4000_0000)  // CLONE_NEWNET, this thread only
                guard r == 0 else { throw TestError.environment("setns: \(String(cString: strerror(-r)))") }
            }
            for port in ports {
                fds.append(try PacketSocket.open(port.interface, relay: true))
                modes.append(port.mode)
            }
        } catch {
            problem = "\(error)"
            opened.signal()
            return
        }
        opened.signal()
        loop()
    }

    private func loop() {
        let count = fds.count
        let polls = UnsafeMutablePointer<pollfd>.allocate(capacity: count + 1)
        defer { polls.deallocate() }
        for i in 0..<count { polls[i] = pollfd(fd: fds[i], events: Int16(POLLIN), revents: 0) }
        polls[count] = pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)
        while true {
            let ready = poll(polls, nfds_t(count + 1), -1)
            if ready < 0 { if errno == EINTR { continue } else { return } }
            if polls[count].revents != 0 { return }
            for i in 0..<count where polls[i].revents != 0 {
                let events = Int32(polls[i].revents)
                if events & Int32(POLLNVAL) != 0 { polls[i].fd = -1; continue }
                if events & Int32(POLLERR) != 0 {
                    // An interface going down reports once through SO_ERROR; read it to clear it.
                    var e: Int32 = 0, length = socklen_t(MemoryLayout<Int32>.size)
                    _ = getsockopt(fds[i], SOL_SOCKET, SO_ERROR, &e, &length)
                }
                if events & Int32(POLLIN) != 0 { drain(i) }
            }
        }
    }

    /// Relays up to 64 waiting frames from port `i`, so a busy port cannot starve the others.
    private func drain(_ i: Int) {
        for _ in 0..<64 {
            receiveMessage.pointee.msg_name = address
            receiveMessage.pointee.msg_namelen = socklen_t(PacketSocket.addressLength)
            receiveMessage.pointee.msg_control = control
            receiveMessage.pointee.msg_controllen = Relay.controlCapacity
            receiveMessage.pointee.msg_flags = 0
            let n = recvmsg(fds[i], receiveMessage, Int32(MSG_DONTWAIT))
            if n < 0 {
                if errno == EINTR || errno == EINVAL { continue }  // EINVAL: offload state a virtio-net header cannot carry
                return
            }
            forward(from: i, length: n)
        }
    }

    private func forward(from i: Int, length: Int) {
        let v = Relay.vnetLength
        guard length >= v + 14, receiveMessage.pointee.msg_flags & Int32(MSG_TRUNC) == 0,
              address.load(fromByteOffset: PacketSocket.packetTypeOffset, as: UInt8.self) != PacketSocket.outgoing else { return }
        let frame = buffer + v
        var tpid: UInt16 = 0, tci: UInt16? = nil, inBand = 0
        if let t = VLANTrunk.auxdataTag(UnsafeRawBufferPointer(start: control, count: Int(receiveMessage.pointee.msg_controllen))) {
            (tpid, tci) = (t.tpid, t.tci)
        } else if length >= v + 18, frame.load(fromByteOffset: 12, as: UInt8.self) == 0x81, frame.load(fromByteOffset: 13, as: UInt8.self) == 0 {
            tpid = 0x8100
            tci = UInt16(frame.load(fromByteOffset: 14, as: UInt8.self)) << 8 | UInt16(frame.load(fromByteOffset: 15, as: UInt8.self))
            inBand = 4
        }
        if tci != nil && tpid != 0x8100 { return }  // 802.1ad service tags are not switched
        guard let vlan = VLANTrunk.ingressVLAN(tci: tci, on: modes[i]) else { return }
        let outTCI = (tci ?? 0) & 0xf000 | vlan
        tag.storeBytes(of: UInt16(0x8100).bigEndian, as: UInt16.self)
        tag.storeBytes(of: outTCI.bigEndian, toByteOffset: 2, as: UInt16.self)
        let rest = length - v - 12 - inBand
        for j in 0..<fds.count where j != i {
            let egress = VLANTrunk.egress(vlan: vlan, to: modes[j])
            if egress == .drop { continue }
            let tagLength = egress == .tagged ? 4 : 0
            vnetOut.copyMemory(from: buffer, byteCount: v)
            VLANTrunk.shiftVirtioNetHeader(vnetOut, by: tagLength - inBand)
            sendVector[0] = iovec(iov_base: vnetOut, iov_len: v)
            sendVector[1] = iovec(iov_base: frame, iov_len: 12)
            sendVector[2] = iovec(iov_base: tag, iov_len: tagLength)
            sendVector[3] = iovec(iov_base: frame + 12 + inBand, iov_len: rest)
            // A full queue or a vanished interface drops this copy, as a switch would.
            _ = sendmsg(fds[j], sendMessage, Int32(MSG_DONTWAIT))
        }
    }
}

/// AF_PACKET from <linux/if_packet.h>, which Glibc's Swift module does not include: constants, the
/// `sockaddr_ll` layout, and one way to open a socket on an interface.
enum PacketSocket {
    static let level: Int32 = 263  // SOL_PACKET
    static let addMembership: Int32 = 1, auxdata: Int32 = 8, vnetHeader: Int32 = 15, ignoreOutgoing: Int32 = 23
    static let promiscuous: UInt16 = 1  // PACKET_MR_PROMISC
    static let outgoing: UInt8 = 4  // PACKET_OUTGOING
    /// struct sockaddr_ll: family u16, protocol be16, ifindex i32, hatype u16, pkttype u8, halen u8, addr[8].
    static let addressLength = 20, packetTypeOffset = 10

    /// A raw socket bound to `interface` in the calling thread's namespace, receiving every frame (ETH_P_ALL)
    /// with 802.1Q tags as PACKET_AUXDATA metadata. A `relay` socket also takes and gives a virtio-net header
    /// per frame, never sees its own sends, has deep buffers, and puts the interface in promiscuous mode.
    static func open(_ interface: String, relay: Bool) throws -> Int32 {
        func fail(_ what: String, _ e: Int32 = errno) -> TestError {
            .environment("\(what) on \(interface): \(String(cString: strerror(e)))")
        }
        let index = if_nametoindex(interface)
        guard index != 0 else { throw fail("no interface") }
        // Protocol 0 receives nothing until bind() names the interface.
        let fd = socket(AF_PACKET, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw fail("socket(AF_PACKET)") }
        func set(_ level: Int32, _ option: Int32, _ value: UnsafeRawPointer, _ length: Int) throws {
            guard setsockopt(fd, level, option, value, socklen_t(length)) == 0 else {
                let e = errno
                close(fd)
                throw fail("setsockopt(\(level), \(option))", e)
            }
        }
        func set(_ level: Int32, _ option: Int32, _ value: Int32) throws {
            try withUnsafeBytes(of: value) { try set(level, option, $0.baseAddress!, 4) }
        }
        try set(level, auxdata, 1)
        if relay {
            try set(level, vnetHeader, 1)
            try set(level, ignoreOutgoing, 1)
            try set(SOL_SOCKET, SO_RCVBUFFORCE, 4 << 20)
            try set(SOL_SOCKET, SO_SNDBUFFORCE, 4 << 20)
        }
        var address = [UInt8](repeating: 0, count: addressLength)
        address.withUnsafeMutableBytes { a in
            a.storeBytes(of: UInt16(AF_PACKET), toByteOffset: 0, as: UInt16.self)
            a.storeBytes(of: UInt16(0x0003).bigEndian, toByteOffset: 2, as: UInt16.self)  // ETH_P_ALL
            a.storeBytes(of: Int32(index), toByteOffset: 4, as: Int32.self)
        }
        let bound = address.withUnsafeBytes { bind(fd, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(addressLength)) }
        guard bound == 0 else { let e = errno; close(fd); throw fail("bind", e) }
        if relay {
            // struct packet_mreq: mr_ifindex i32, mr_type u16, mr_alen u16, mr_address[8].
            var request = [UInt8](repeating: 0, count: 16)
            request.withUnsafeMutableBytes { r in
                r.storeBytes(of: Int32(index), toByteOffset: 0, as: Int32.self)
                r.storeBytes(of: promiscuous, toByteOffset: 4, as: UInt16.self)
            }
            try request.withUnsafeBytes { try set(level, addMembership, $0.baseAddress!, 16) }
        }
        return fd
    }
}

import KilnTestSupport
import CAllocationCounter
import Foundation
import Glibc
import KilnSystem
import Testing
@testable import KilnSwitch

/// The forwarding path allocates nothing per frame: each test counts the heap allocations (malloc and friends,
/// counted per thread by CAllocationCounter) of the thread that forwards, over many more frames than the bound,
/// so one allocation per frame — or per few frames — fails it.
@Suite(.serialized) struct AllocationTests {
    /// An IPv4/UDP frame from 10.0.0.<src> to 10.0.0.<dst> between the hosts' MACs, padded to 64 bytes.
    func udpFrame(dst: UInt64, src: UInt64, vid: UInt16? = nil, port: UInt16) -> [UInt8] {
        var ip: [UInt8] = [0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, UInt8(src & 0xff), 10, 0, 0, UInt8(dst & 0xff)]
        ip += [UInt8(port >> 8), UInt8(port & 0xff), 0x12, 0xb5, 0, 8, 0, 0]
        var f = frame(dst: dst, src: src, vid: vid, payload: ip)
        while f.count < 64 { f.append(0) }
        return f
    }

    /// Header parsing, learning, the forwarding decision, tag actions and flow accounting over 200,000 frames
    /// (several hosts, VLANs, tagged and untagged, known and unknown destinations) on one thread.
    @Test func coreForwardsWithoutAllocating() {
        var core = fiveports(mirrors: [(sources: [0], destination: 5)])
        var flows = FlowTable(capacity: 1024)
        let frames: [(port: Int, bytes: [UInt8])] = [
            (0, udpFrame(dst: hostB, src: hostA, port: 1000)),
            (1, udpFrame(dst: hostA, src: hostB, port: 1001)),
            (2, udpFrame(dst: Ethernet.broadcast, src: hostC, port: 1002)),
            (3, udpFrame(dst: hostA, src: hostC, vid: 10, port: 1003)),
            (3, udpFrame(dst: 0x02_00_00_00_00_99, src: 0x02_00_00_00_00_33, vid: 20, port: 1004)),
            (4, udpFrame(dst: hostB, src: 0x02_00_00_00_00_44, port: 1005)),
        ]
        // One contiguous buffer and plain integer loops: this file is built at -Onone, where iterating an Array
        // allocates by itself.
        let stride = 128
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: stride * frames.count, alignment: 64)
        defer { buffer.deallocate() }
        let ports = UnsafeMutablePointer<Int>.allocate(capacity: frames.count)
        defer { ports.deallocate() }
        for (i, f) in frames.enumerated() {
            f.bytes.withUnsafeBytes { buffer.advanced(by: i * stride).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            ports[i] = f.port
        }
        let count = frames.count, length = 64
        var sink = 0
        func pass(_ rounds: Int, from start: UInt64) {
            var round = 0
            while round < rounds {
                let now = start + UInt64(round) * 1000
                var i = 0
                while i < count {
                    let p = UnsafeRawPointer(buffer.advanced(by: i * stride))
                    let port = ports[i]
                    i += 1
                    guard let h = FrameHeader(p, length: length, strippedTCI: nil) else { continue }
                    let d = core.forward(port: port, header: h, length: length, now: now)
                    if d.ports != 0, let key = FlowKey.parse(p, length: length, header: h, vlan: d.vlan, port: port) {
                        flows.account(key, bytes: length, nowMilliseconds: now / 1_000_000)
                    }
                    var rest = d.ports
                    while rest != 0 {
                        let out = rest.trailingZeroBitCount
                        rest &= rest - 1
                        let action = core.tagAction(port: out, vlan: d.vlan, tagInBuffer: h.tagInBuffer, bufferVID: h.vid ?? 0)
                        sink &+= action == .asIs ? 1 : 2
                    }
                }
                round += 1
            }
        }
        pass(100, from: 0)  // learning and first flows
        let before = kiln_thread_allocations()
        pass(200_000 / count, from: 1_000_000)
        let allocated = kiln_thread_allocations() - before
        #expect(allocated < 20, "\(allocated) allocations for 200,000 frames")
        #expect(sink > 200_000, "the frames were forwarded")
        #expect(core.counters[0].rxPackets > 30_000)
    }

    /// The real switch loop between two namespaces (rings, transmit batches, learning, flow accounting) while a
    /// flood ping crosses it: the loop thread's allocations, setup included, stay far below its frame count.
    /// (Flows are exported only when the loop ends: each export allocates its records, per interval, not per frame.)
    @Test func switchLoopForwardsWithoutAllocating() throws {
        let lab = try Lab(hosts: [.init(name: "h1", port: .init(name: "h1", vlan: 10), address: "10.0.0.1/24"),
                                  .init(name: "h2", port: .init(name: "h2", vlan: 10), address: "10.0.0.2/24")],
                          start: false, prefix: "kswa")
        defer { lab.close() }
        let spec = SwitchSpec(ports: [.init(name: "h1", vlan: 10), .init(name: "h2", vlan: 10)],
                              export: .init(collector: "127.0.0.1:4739", interval: 3600))
        let sw = try NetworkNamespace.run(path: "/run/netns/\(lab.switchNamespace)") { try Switch(spec: spec) }
        nonisolated(unsafe) let loop = sw
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var allocations: UInt = 0
        nonisolated(unsafe) var failure: (any Error)?
        let thread = Thread {
            let before = kiln_thread_allocations()
            do { try loop.run() } catch { failure = error }
            allocations = kiln_thread_allocations() - before
            done.signal()
        }
        thread.start()
        let pinged = try lab.exec("h1", "ping -n -q -f -c 12000 -W 1 10.0.0.2", timeout: 120)
        sw.requestStop()
        done.wait()
        #expect(failure == nil, "\(String(describing: failure))")
        let frames = sw.counters.reduce(0) { $0 + $1.rxPackets }
        #expect(pinged.status == 0, "\(pinged.output)")
        #expect(frames >= 24_000, "\(frames) frames forwarded: \(pinged.output)")
        // Setup (poll set, ports) and the one flow export at the end; one allocation per frame would be 24,000.
        #expect(allocations < 1_000, "\(allocations) allocations in the loop thread for \(frames) frames")
    }
}

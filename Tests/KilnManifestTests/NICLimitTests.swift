import Foundation
import Testing
@testable import KilnConfig
@testable import KilnManifest

/// More interfaces than a VM has PCI slots for are refused by validation, at the first one that does not fit.
struct NICLimitTests {
    func manifest(interfaces count: Int) -> String {
        "apiVersion: kiln/v1\nname: r\nbase: debian-cloud\ninterfaces:\n"
            + (0..<count).map { "  nic\($0): { mac: \"52:54:00:00:01:\(String(format: "%02x", $0))\" }\n" }.joined()
    }

    @Test func interfacesBeyondThePCISlotsAreRefusedAtTheFirstThatDoesNotFit() throws {
        // debian-cloud builds disk images, so a disk may take slot 0x10: 13 NICs fit (0x03…0x0f).
        let capacity = PCISlots.nicCapacity(withDisk: true)
        #expect(capacity == 13)
        let path = try ManifestLoaderTests().write(manifest(interfaces: capacity + 1))
        do {
            _ = try ManifestLoader.load(path)
            Issue.record("\(capacity + 1) interfaces validated")
        } catch let e as ManifestErrors {
            #expect(e.errors.count == 1)
            let error = try #require(e.errors.first)
            #expect(error.location.line == 4 + capacity + 1 && error.location.column == 10, "\(error)")
            #expect(error.path == "interfaces.nic\(capacity)")
            #expect(error.message == "14 interfaces do not fit: a VM has PCI slots for 13 NICs beside its boot disk (the base builds disk images); this is number 14")
        }
        _ = try ManifestLoader.load(try ManifestLoaderTests().write(manifest(interfaces: capacity)))
    }

    @Test func theLimitIsTheSlotsQEMUCommandHands() {
        #expect(PCISlots.nicCapacity(withDisk: false) == PCISlots.usable.upperBound - PCISlots.firstNIC + 1)
        #expect(PCISlots.firstNIC + PCISlots.nicCapacity(withDisk: true) == PCISlots.firstDisk)
    }
}

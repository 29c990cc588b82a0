import Foundation
import Testing
@testable import KilnVM

@Suite(.serialized) struct AcceleratorProbeTests {
    private func cacheDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "kiln-vm-accel-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test func explicitRequestsAreHonouredWithoutProbing() throws {
        let directory = try cacheDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(AcceleratorProbe.resolve(.kvm, kernel: nil, cacheDirectory: directory) == .kvm)
        #expect(AcceleratorProbe.resolve(.tcg, kernel: nil, cacheDirectory: directory) == .tcg)
        #expect(!FileManager.default.fileExists(atPath: directory + "/accel.json"))
    }

    @Test func missingKVMDeviceMeansTCGAndNoCache() throws {
        let directory = try cacheDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var probe = AcceleratorProbe(kernel: nil, cacheDirectory: directory)
        probe.kvmDevice = directory + "/no-kvm"
        let verdict = probe.resolve(.auto)
        #expect(verdict.accelerator == .tcg)
        #expect(verdict.reason.hasSuffix("no-kvm: No such file or directory"))
        #expect(!FileManager.default.fileExists(atPath: directory + "/accel.json"))
    }

    /// Boots QEMU under KVM for real (SeaBIOS, or KILN_TEST_KERNEL when set). On Kiln's build host KVM aborts,
    /// so the verdict is TCG; elsewhere it may be KVM. Either way the verdict is cached (how long the probe takes is a benchmark matter).
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/qemu-system-x86_64")
                   && access("/dev/kvm", R_OK | W_OK) == 0))
    func probeGivesAVerdictAndCachesItPerHost() throws {
        let directory = try cacheDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var probe = AcceleratorProbe(kernel: ProcessInfo.processInfo.environment["KILN_TEST_KERNEL"], cacheDirectory: directory)
        probe.deadlineSeconds = 5
        let first = probe.resolve(.auto)
        #expect(!first.cached)
        if first.accelerator == .kvm {
            #expect(first.reason.hasPrefix("guest console answered"))
        } else {
            #expect(first.reason.hasPrefix("QEMU under KVM") || first.reason.hasPrefix("no console output"))
        }
        print("accelerator probe: \(first.accelerator.rawValue) (\(first.reason))")

        let key = try #require(probe.hostKey())
        #expect(key.contains("QEMU emulator version"))
        let data = try #require(FileManager.default.contents(atPath: probe.cachePath))
        let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: [String: String]])
        #expect(json[key]?["accelerator"] == first.accelerator.rawValue)

        let second = probe.resolve(.auto)
        #expect(second.cached)
        #expect(second.accelerator == first.accelerator)
        #expect(second.reason == first.reason)
        // No QEMU of ours is left: the probe killed and reaped it.
        let leftovers = try ManagedProcess(["pgrep", "-f", "kiln-kvm-probe"])
        _ = leftovers.wait(timeout: 5)
        #expect(leftovers.outputText.isEmpty)
    }

    @Test func cachePathFollowsXDG() {
        let probe = AcceleratorProbe(kernel: nil, cacheDirectory: "/x/y")
        #expect(probe.cachePath == "/x/y/accel.json")
    }
}

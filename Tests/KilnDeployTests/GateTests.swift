import Foundation
import KilnImage
import Testing
@testable import KilnDeploy

/// Tested image = deployed image: hashes of the files on disk against build.json and tested.json.
@Suite struct GateTests {
    /// An image directory with real files and a build.json naming their real hashes.
    static func image(_ dir: ScratchDirectory) throws -> DeployImage {
        let kernel = try dir.write("vmlinuz", "kernel bytes")
        let initrd = try dir.write("initramfs.cpio.zst", "initramfs bytes")
        let info = try routerInfo(only: [("initramfs.cpio.zst", try Hashing.sha256(file: initrd).sha256, 15),
                                         ("vmlinuz", try Hashing.sha256(file: kernel).sha256, 12)])
        return DeployImage(directory: dir.path, info: info)
    }

    static func record(_ dir: ScratchDirectory, passed: Bool, hashes: [String: String]) throws {
        let body = hashes.map { "\"\($0.key)\":\"\($0.value)\"" }.joined(separator: ",")
        _ = try dir.write("tested.json", #"{"topology":"router.topology.yaml","passed":\#(passed),"artifacts":{\#(body)},"date":"2025-01-01T00:00:00Z"}"#)
    }

    static func hashes(_ image: DeployImage) -> [String: String] {
        Dictionary(uniqueKeysWithValues: image.info.artifacts.map { ($0.file, $0.sha256) })
    }

    @Test func refusesAnImageNeverTested() throws {
        let dir = try ScratchDirectory("gate")
        let image = try Self.image(dir)
        do {
            _ = try image.verify(["vmlinuz", "initramfs.cpio.zst"], allowUntested: false)
            Issue.record("an untested image was accepted")
        } catch let e as DeployError {
            #expect(e.description.contains("never tested") && e.description.contains("--untested"))
        }
        #expect(try image.verify(["vmlinuz", "initramfs.cpio.zst"], allowUntested: true) == Self.hashes(image))
    }

    @Test func refusesAFailedTest() throws {
        let dir = try ScratchDirectory("gate")
        let image = try Self.image(dir)
        try Self.record(dir, passed: false, hashes: Self.hashes(image))
        #expect(throws: DeployError.self) { try image.verify(["vmlinuz", "initramfs.cpio.zst"], allowUntested: false) }
    }

    @Test func acceptsExactlyWhatPassed() throws {
        let dir = try ScratchDirectory("gate")
        let image = try Self.image(dir)
        try Self.record(dir, passed: true, hashes: Self.hashes(image))
        #expect(try image.verify(["vmlinuz", "initramfs.cpio.zst"], allowUntested: false) == Self.hashes(image))
    }

    @Test func refusesWhenTheTestBootedOtherBytes() throws {
        let dir = try ScratchDirectory("gate")
        let image = try Self.image(dir)
        var tested = Self.hashes(image)
        tested["vmlinuz"] = String(repeating: "0", count: 64)
        try Self.record(dir, passed: true, hashes: tested)
        do {
            _ = try image.verify(["vmlinuz", "initramfs.cpio.zst"], allowUntested: false)
            Issue.record("a kernel the test did not boot was accepted")
        } catch let DeployError.hashMismatch(artifact, _, _, source) {
            #expect(artifact.hasSuffix("/vmlinuz") && source.hasSuffix("tested.json"))
        }
    }

    @Test func refusesAFileChangedSinceTheBuild() throws {
        let dir = try ScratchDirectory("gate")
        let image = try Self.image(dir)
        try Self.record(dir, passed: true, hashes: Self.hashes(image))
        _ = try dir.write("initramfs.cpio.zst", "tampered")
        do {
            _ = try image.verify(["vmlinuz", "initramfs.cpio.zst"], allowUntested: true)
            Issue.record("a changed initramfs was accepted even with --untested")
        } catch let DeployError.hashMismatch(_, _, _, source) {
            #expect(source.hasSuffix("build.json"))
        }
    }
}

/// Deploy profiles: defaults, and errors at file:line:col.
@Suite struct ProfileTests {
    @Test func loadsAProfile() throws {
        let dir = try ScratchDirectory("profile")
        let path = try dir.write("router.deploy.yaml", """
            name: edge-1
            memory: 384
            nics:
              wan: { bridge: br-wan, queues: 4 }
              lan: { hostdev: "03:10.1", vlan: 20 }
            libvirt: { type: qemu, pool: kiln }
            """)
        let p = try DeployProfile.load(path)
        #expect(p.name == "edge-1" && p.memory == 384 && p.vcpus == 1 && p.boot == .direct)
        #expect(p.nics.keys == ["wan", "lan"])
        #expect(p.nics["wan"]?.queues == 4)
        #expect(PCIAddress(p.nics["lan"]?.hostdev ?? "")?.description == "0000:03:10.1")
        #expect(p.libvirt.pool == "kiln" && p.libvirt.console == "file" && p.libvirt.machine == "q35")
    }

    @Test func reportsTheLineOfABadNIC() throws {
        let dir = try ScratchDirectory("profile")
        let path = try dir.write("bad.deploy.yaml", "memory: 256\nnics:\n  wan: { bridge: br0, network: n1 }\n")
        do {
            _ = try DeployProfile.load(path)
            Issue.record("two backings for one NIC were accepted")
        } catch {
            let text = "\(error)"
            #expect(text.contains("bad.deploy.yaml:3:") && text.contains("exactly one of"), "\(text)")
        }
    }

    @Test func unknownKeysGetADidYouMean() throws {
        let dir = try ScratchDirectory("profile")
        let path = try dir.write("typo.deploy.yaml", "memroy: 256\n")
        do {
            _ = try DeployProfile.load(path)
            Issue.record("a typo was accepted")
        } catch {
            #expect("\(error)".contains("typo.deploy.yaml:1:") && "\(error)".contains("memory"), "\(error)")
        }
    }
}

import Foundation
import Testing

/// End to end through the CLI: build, reproducibility, boot, topologies and failure reports, under QEMU.
/// Serialized: each boots VMs, and the machine has two cores.
@Suite(.serialized)
struct BuildAndBootTests {
    @Test func buildsAreBitForBitReproducible() throws {
        let first = try Kiln.temporaryDirectory("out1"), second = try Kiln.temporaryDirectory("out2")
        let cache = try Kiln.temporaryDirectory("cache")
        defer { for d in [first, second, cache] { try? FileManager.default.removeItem(atPath: d) } }
        let a = try Kiln.run(["build", "Appliances/router.yaml", "--out", first])
        #expect(a.status == 0, "\(a.stderr)")
        // The second build starts from an empty layer and tree cache (only the verified .debs are shared).
        let sharedDebs = FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/kiln/debs").path
        let env = ProcessInfo.processInfo.environment
        let debs = env["XDG_CACHE_HOME"].map { $0 + "/kiln/debs" } ?? sharedDebs
        try FileManager.default.createDirectory(atPath: cache, withIntermediateDirectories: true)
        try? FileManager.default.createSymbolicLink(atPath: cache + "/debs", withDestinationPath: debs)
        sleep(1)
        let b = try Kiln.run(["build", "Appliances/router.yaml", "--out", second, "--cache-dir", cache, "--offline"])
        #expect(b.status == 0, "\(b.stderr)")
        for artifact in ["vmlinuz", "initramfs.cpio.zst", "sbom.spdx.json", "disk.raw", "disk.qcow2", "disk.iso"] {
            let x = FileManager.default.contents(atPath: "\(first)/router/\(artifact)")
            let y = FileManager.default.contents(atPath: "\(second)/router/\(artifact)")
            #expect(x != nil && x == y, "\(artifact) differs between the two builds")
        }
        let info = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(first)/router/build.json"))) as? [String: Any]
        let sizes = info?["sizes"] as? [String: Int] ?? [:]
        #expect((sizes["initramfs"] ?? .max) <= 6_000_000, "initramfs \(sizes["initramfs"] ?? -1) bytes is over the 6 MB budget")
        #expect((sizes["total"] ?? .max) <= 20_000_000, "kernel + initramfs \(sizes["total"] ?? -1) bytes is over 20 MB")
    }

    /// The UEFI formats: sizes within budget, every artifact in build.json with its hash, and each disk image
    /// boots to READY under OVMF (the unified kernel image at the removable-media path of the ESP).
    @Test func diskImagesBootToReadyUnderOVMF() throws {
        let out = try Kiln.temporaryDirectory("disks")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let build = try Kiln.run(["build", "Appliances/router.yaml", "--out", out])
        #expect(build.status == 0, "\(build.stderr)")
        let dir = out + "/router"
        let info = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/build.json"))) as? [String: Any]
        let artifacts = (info?["artifacts"] as? [[String: Any]] ?? []).reduce(into: [String: (String, Int)]()) {
            $0[$1["file"] as? String ?? ""] = ($1["sha256"] as? String ?? "", $1["size"] as? Int ?? -1)
        }
        for file in ["vmlinuz", "initramfs.cpio.zst", "sbom.spdx.json", "disk.raw", "disk.qcow2", "disk.iso"] {
            let size = (try? FileManager.default.attributesOfItem(atPath: dir + "/" + file)[.size] as? Int) ?? nil
            #expect(artifacts[file]?.1 == size && size != nil, "\(file): build.json says \(String(describing: artifacts[file])), file has \(String(describing: size))")
        }
        #expect((artifacts["disk.raw"]?.1 ?? .max) <= 24 * 1024 * 1024, "raw disk \(artifacts["disk.raw"]?.1 ?? -1) bytes is over 24 MiB")
        #expect((artifacts["disk.qcow2"]?.1 ?? .max) <= 18 * 1024 * 1024, "qcow2 \(artifacts["disk.qcow2"]?.1 ?? -1) bytes is over 18 MiB")
        let gpt = Process()
        gpt.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        gpt.arguments = ["sgdisk", "-v", dir + "/disk.raw"]
        let pipe = Pipe()
        gpt.standardOutput = pipe
        try gpt.run()
        let verdict = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        gpt.waitUntilExit()
        #expect(verdict.contains("No problems found"), "\(verdict)")
        for format in ["raw", "qcow2", "iso"] {
            let r = try Kiln.run(["boot", dir, "--format", format, "--timeout", "240"])
            #expect(r.status == 0, "\(format): \(r.stdout)\n\(r.stderr)")
            #expect(r.stdout.contains("router [") && r.stdout.contains("]: READY"), "\(format): \(r.stdout)")
        }
    }

    @Test func failedBuildLeavesPreviousOutputIntact() throws {
        let out = try Kiln.temporaryDirectory("keep")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let good = try Kiln.run(["build", "Appliances/router.yaml", "--out", out])
        #expect(good.status == 0, "\(good.stderr)")
        let before = FileManager.default.contents(atPath: out + "/router/initramfs.cpio.zst")
        // Same name, a module that does not exist: the build fails after the manifest is accepted.
        let manifest = Kiln.repo.appendingPathComponent("Appliances/.broken-router.yaml").path
        let text = try String(contentsOfFile: Kiln.repo.appendingPathComponent("Appliances/router.yaml").path, encoding: .utf8)
        try (text + "modules: [no_such_module]\n").write(toFile: manifest, atomically: true, encoding: .utf8)
        try? FileManager.default.copyItem(atPath: Kiln.repo.appendingPathComponent("Appliances/router.lock").path,
                                          toPath: Kiln.repo.appendingPathComponent("Appliances/.broken-router.lock").path)
        defer {
            try? FileManager.default.removeItem(atPath: manifest)
            try? FileManager.default.removeItem(atPath: Kiln.repo.appendingPathComponent("Appliances/.broken-router.lock").path)
        }
        let bad = try Kiln.run(["build", manifest, "--out", out])
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("no_such_module"), "\(bad.stderr)")
        #expect(FileManager.default.contents(atPath: out + "/router/initramfs.cpio.zst") == before)
    }

    @Test func routerBootsToReady() throws {
        let r = try Kiln.run(["boot", "Appliances/router.yaml"])
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("router [") && r.stdout.contains("]: READY"), "\(r.stdout)")
        #expect(r.stdout.contains("kiln-init /init → READY:"))
    }

    @Test func routerTopologyPasses() throws {
        let junit = try Kiln.temporaryDirectory("junit") + "/router.xml"
        let r = try Kiln.run(["test", "Appliances/router.topology.yaml", "--junit", junit])
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains(" 0 failed"), "\(r.stdout)")
        let xml = (try? String(contentsOfFile: junit, encoding: .utf8)) ?? ""
        #expect(xml.contains("failures=\"0\"") && xml.contains("<testcase"), "\(xml)")
        // The report prints kiln-init's own /init → READY (a figure, not its target: this machine is shared).
        #expect(r.stdout.range(of: #"kiln-init /init → READY [1-9][0-9]* ms \(guest clock\)"#, options: .regularExpression) != nil, "\(r.stdout)")
        // The VLAN part ran: clients behind the trunk leased from their pools and the firewall kept them apart.
        for name in ["leases an address from the VLAN 10 pool", "leases an address from the VLAN 20 pool",
                     "VLAN 10 reaches the WAN server through NAT", "VLAN 10 → VLAN 20 is rejected by the firewall",
                     "VLAN 20 → VLAN 10 is dropped by the firewall"] {
            #expect(r.stdout.contains("PASS a client in VLAN") && r.stdout.contains(name), "\(name): \(r.stdout)")
        }
        #expect(Kiln.leftovers(of: r.pid).isEmpty, "\(Kiln.leftovers(of: r.pid))")
    }

    @Test func twoVMChainPasses() throws {
        let r = try Kiln.run(["test", "Appliances/chain.topology.yaml"])
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        #expect(Kiln.leftovers(of: r.pid).isEmpty, "\(Kiln.leftovers(of: r.pid))")
    }

    @Test func brokenApplianceFailsNamingThePhaseAndCleansUp() throws {
        let dir = Kiln.repo.appendingPathComponent("Tests/KilnIntegrationTests/Fixtures").path
        let r = try Kiln.run(["test", dir + "/broken.topology.yaml", "--boot-timeout", "40"])
        #expect(r.status == 1, "\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("failed phase: network"), "\(r.stdout)")
        #expect(r.stdout.contains("| KILN {\"event\":\"phase-failed\""), "the report shows the console: \(r.stdout)")
        #expect(Kiln.leftovers(of: r.pid).isEmpty, "\(Kiln.leftovers(of: r.pid))")
    }

    /// Ctrl-C in the middle of a run, after whoever started it has gone (its output pipes closed): the run still
    /// tears down its namespaces and QEMU, then exits 130.
    @Test func interruptedRunTearsDownEvenWhenItsOutputIsGone() throws {
        guard let bin = Kiln.bin else { throw Kiln.Missing() }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: bin + "/kiln")
        p.arguments = ["test", "Appliances/router.topology.yaml"]
        p.currentDirectoryURL = Kiln.repo
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        try p.run()
        defer { if p.isRunning { p.terminate() } }
        let pid = p.processIdentifier
        // Wait until the VM runs (a QEMU process and namespaces of this run exist).
        let deadline = Date().addingTimeInterval(180)
        while p.isRunning, Date() < deadline, !Kiln.leftovers(of: pid).contains(where: { $0.contains("qemu") }) { usleep(100_000) }
        let during = Kiln.leftovers(of: pid)
        #expect(during.contains { $0.hasPrefix("namespace") } && during.contains { $0.contains("qemu") }, "\(during)")
        try out.fileHandleForReading.close()
        try err.fileHandleForReading.close()
        p.interrupt()
        let stop = Date().addingTimeInterval(90)
        while p.isRunning && Date() < stop { usleep(100_000) }
        #expect(!p.isRunning, "kiln test did not exit after SIGINT")
        if !p.isRunning { #expect(p.terminationStatus == 130) }
        #expect(Kiln.leftovers(of: pid).isEmpty, "\(Kiln.leftovers(of: pid))")
    }

    @Test func crashingServiceFailsTheServicesPhase() throws {
        let dir = Kiln.repo.appendingPathComponent("Tests/KilnIntegrationTests/Fixtures").path
        let r = try Kiln.run(["test", dir + "/crashing.topology.yaml", "--boot-timeout", "40"])
        #expect(r.status == 1, "\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("failed phase: services: broken exited with status 2"), "\(r.stdout)")
        #expect(r.stdout.contains("[broken] kiln-init: unknown service 'no-such-service'"), "the service's own output is on the console: \(r.stdout)")
        #expect(Kiln.leftovers(of: r.pid).isEmpty, "\(Kiln.leftovers(of: r.pid))")
    }

    @Test func invalidManifestIsRejectedWithItsPosition() throws {
        let path = try Kiln.temporaryDirectory("bad") + "/bad.yaml"
        try "apiVersion: kiln/v1\nname: x\nbase: debian-cloud\ninterfaces:\n  wan: { adresses: [10.0.0.1/24] }\n"
            .write(toFile: path, atomically: true, encoding: .utf8)
        let r = try Kiln.run(["validate", path])
        #expect(r.status == 2)
        #expect(r.stderr.contains("\(path):5:10: error: interfaces.wan.adresses: unknown key 'adresses' (did you mean 'addresses'?)"), "\(r.stderr)")
    }
}

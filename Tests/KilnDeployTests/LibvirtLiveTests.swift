import Foundation
import KilnImage
import Logging
import Testing
@testable import KilnDeploy

/// The must-show: a real libvirtd (domain type `qemu`, TCG) runs the router deployed by `LibvirtDeployer`, the
/// console shows READY, and undefine leaves nothing behind.
///
/// The daemon runs in its own mount and network namespaces: its state (/etc/libvirt, /run, /var) is tmpfs or a
/// scratch directory, and the guest's TAPs live in a network namespace with nothing else in it, so no traffic
/// can reach the host's network. Only the socket and the storage pool sit in the scratch directory.
@Suite(.serialized) struct LibvirtLiveTests {
    static var image: String? {
        let env = ProcessInfo.processInfo.environment["KILN_DEPLOY_IMAGE"]
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        return [env, "/tmp/deploy-out/router", repo + "/out/router"].compactMap { $0 }
            .first { FileManager.default.fileExists(atPath: $0 + "/build.json") }
    }

    static var runnable: Bool {
        getuid() == 0 && image != nil && toolExists("libvirtd") && toolExists("virsh") && toolExists("unshare")
            && toolExists("qemu-system-x86_64")
    }

    @Test(.enabled(if: runnable), .timeLimit(.minutes(5)))
    func deployUpgradeUndefineOnARealLibvirtd() throws {
        let daemon = try LibvirtSandbox()
        defer { daemon.tearDown() }
        let image = try DeployImage(directory: Self.image ?? "")
        try HostTool.check(["virsh", "-c", daemon.uri, "pool-create-as", "kiln-test", "dir", "--target", daemon.pool])

        var logger = Logger(label: "kiln.deploy.test")
        logger.logLevel = .info
        let deployer = LibvirtDeployer(uri: daemon.uri, logger: logger, readyTimeout: 120)
        let profile = DeployProfile(name: "kiln-live", memory: 256, vcpus: 1,
                                    nics: [("wan", .init(tap: "kwan0", queues: 2)), ("lan", .init(tap: "klan0"))],
                                    libvirt: .init(type: "qemu", pool: "kiln-test"))
        let hashes = try image.verify(["vmlinuz", "initramfs.cpio.zst"], allowUntested: true)

        let first = try deployer.deploy(image: image, profile: profile, hashes: hashes)
        #expect(first.readyAfter != nil)
        #expect(first.artifacts.map(\.sha256).sorted() == hashes.values.sorted())
        let state = try HostTool.check(["virsh", "-c", daemon.uri, "domstate", "kiln-live"])
        #expect(state.contains("running"))
        let console = try String(contentsOfFile: daemon.pool + "/kiln-live.console.log", encoding: .utf8)
        #expect(console.contains(#"KILN {"event":"ready""#))
        // The uploaded volumes are byte-for-byte the artifacts.
        for a in first.artifacts {
            #expect(try Hashing.sha256(file: daemon.pool + "/" + a.volume).sha256 == a.sha256)
        }

        // An upgrade restarts on the (here identical) image and keeps the replaced one as `previous`.
        let second = try deployer.upgrade(image: image, profile: profile, hashes: hashes)
        #expect(second.readyAfter != nil)
        #expect(try deployer.installedArtifacts("kiln-live").map(\.role).sorted() == ["current", "current", "previous", "previous"])
        let back = try deployer.rollback(domain: "kiln-live", pool: "kiln-test")
        #expect(back.readyAfter != nil)

        try deployer.undefine(domain: "kiln-live", pool: "kiln-test")
        let left = try HostTool.check(["virsh", "-c", daemon.uri, "list", "--all", "--name"])
        #expect(left.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)
        let volumes = try FileManager.default.contentsOfDirectory(atPath: daemon.pool)
        #expect(volumes.isEmpty, "left in the pool: \(volumes)")
        #expect(throws: DeployError.self) { try deployer.undefine(domain: "kiln-live", pool: "kiln-test") }
    }
}

extension LibvirtLiveTests {
    /// A deploy that fails (its bridge does not exist) leaves no domain and no volume, so the fixed deploy
    /// succeeds instead of failing with "already exists".
    @Test(.enabled(if: runnable), .timeLimit(.minutes(5)))
    func aFailedDeployLeavesTheHostAsItWas() throws {
        let daemon = try LibvirtSandbox()
        defer { daemon.tearDown() }
        let image = try DeployImage(directory: Self.image ?? "")
        try HostTool.check(["virsh", "-c", daemon.uri, "pool-create-as", "kiln-test", "dir", "--target", daemon.pool])
        let deployer = LibvirtDeployer(uri: daemon.uri, logger: Logger(label: "kiln.deploy.test"), readyTimeout: 120)
        let hashes = try image.verify(["vmlinuz", "initramfs.cpio.zst"], allowUntested: true)
        let broken = DeployProfile(name: "kiln-fail", memory: 256, vcpus: 1,
                                   nics: [("wan", .init(bridge: "kiln-no-such-br")), ("lan", .init(tap: "kfl0"))],
                                   libvirt: .init(type: "qemu", pool: "kiln-test"))
        #expect(throws: DeployError.self) { try deployer.deploy(image: image, profile: broken, hashes: hashes) }
        let defined = try HostTool.check(["virsh", "-c", daemon.uri, "list", "--all", "--name"])
        #expect(defined.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "left defined: \(defined)")
        let volumes = try FileManager.default.contentsOfDirectory(atPath: daemon.pool)
        #expect(volumes.isEmpty, "left in the pool: \(volumes)")

        let fixed = DeployProfile(name: "kiln-fail", memory: 256, vcpus: 1,
                                  nics: [("wan", .init(tap: "kfw0")), ("lan", .init(tap: "kfl0"))],
                                  libvirt: .init(type: "qemu", pool: "kiln-test"))
        let result = try deployer.deploy(image: image, profile: fixed, hashes: hashes)
        #expect(result.readyAfter != nil)
        try deployer.undefine(domain: "kiln-fail", pool: "kiln-test")
    }
}

/// A libvirtd the test starts and stops: private mount + network namespaces, state in a scratch directory.
final class LibvirtSandbox {
    let root: String
    let process = Process()
    var uri: String { "qemu:///system?socket=\(root)/sock/libvirt-sock" }
    var pool: String { root + "/pool" }

    init() throws {
        // Short: a unix socket path must fit in 108 bytes.
        root = "/tmp/kd-" + UUID().uuidString.prefix(8).lowercased()
        let fm = FileManager.default
        for d in ["etc", "sock", "pool"] { try fm.createDirectory(atPath: root + "/" + d, withIntermediateDirectories: true) }
        // libvirt's QEMU driver resolves its compiled-in user before reading qemu.conf; give it one, in here only.
        let passwd = try String(contentsOfFile: "/etc/passwd", encoding: .utf8) + "libvirt-qemu:x:64055:64055::/var/lib/libvirt:/usr/sbin/nologin\n"
        let group = try String(contentsOfFile: "/etc/group", encoding: .utf8) + "libvirt-qemu:x:64055:\n"
        try passwd.write(toFile: root + "/passwd", atomically: true, encoding: .utf8)
        try group.write(toFile: root + "/group", atomically: true, encoding: .utf8)
        try """
            user = "root"
            group = "root"
            dynamic_ownership = 0
            security_driver = "none"
            stdio_handler = "file"
            namespaces = [ ]
            cgroup_controllers = [ ]

            """.write(toFile: root + "/etc/qemu.conf", atomically: true, encoding: .utf8)
        try """
            unix_sock_dir = "\(root)/sock"
            unix_sock_rw_perms = "0700"
            auth_unix_rw = "none"
            auth_unix_ro = "none"

            """.write(toFile: root + "/etc/libvirtd.conf", atomically: true, encoding: .utf8)
        let script = [
            "mount -t tmpfs kiln-run /run", "mount -t tmpfs kiln-var /var",
            "mkdir -p /var/lib /var/log /var/cache /var/tmp", "ln -s /run /var/run",
            "mount --bind \(root)/etc /etc/libvirt", "mount --bind \(root)/passwd /etc/passwd",
            "mount --bind \(root)/group /etc/group", "ip link set lo up",
            "exec libvirtd -f \(root)/etc/libvirtd.conf -p \(root)/libvirtd.pid",
        ].joined(separator: " && ")
        process.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        process.arguments = ["--mount", "--net", "--propagation", "private", "sh", "-c", script]
        _ = fm.createFile(atPath: root + "/daemon.log", contents: nil)
        let log = FileHandle(forWritingAtPath: root + "/daemon.log")
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if (try? HostTool.run(["virsh", "-c", uri, "version"], timeout: 10))?.status == 0 { return }
            if !process.isRunning { break }
            Thread.sleep(forTimeInterval: 0.5)
        }
        let text = (try? String(contentsOfFile: root + "/daemon.log", encoding: .utf8)) ?? ""
        tearDown()
        throw DeployError.toolMissing(tool: "libvirtd", hint: "did not come up:\n" + text)
    }

    /// Destroys any domain and pool still there, stops the daemon by pid, kills a QEMU it left, removes the state.
    func tearDown() {
        if process.isRunning {
            let names = (try? HostTool.run(["virsh", "-c", uri, "list", "--all", "--name"], timeout: 20))?.stdout ?? ""
            var qemuPids: [pid_t] = []
            for name in names.split(separator: "\n").map(String.init) where !name.isEmpty {
                let pidFile = "/proc/\(process.processIdentifier)/root/run/libvirt/qemu/\(name).pid"
                if let text = try? String(contentsOfFile: pidFile, encoding: .utf8), let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
                    qemuPids.append(pid)
                }
                _ = try? HostTool.run(["virsh", "-c", uri, "destroy", name], timeout: 30)
                _ = try? HostTool.run(["virsh", "-c", uri, "undefine", name, "--nvram"], timeout: 30)
            }
            _ = try? HostTool.run(["virsh", "-c", uri, "pool-destroy", "kiln-test"], timeout: 20)
            process.terminate()
            let deadline = Date().addingTimeInterval(10)
            while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.2) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
            for pid in qemuPids where kill(pid, 0) == 0 { kill(pid, SIGKILL) }
        }
        try? FileManager.default.removeItem(atPath: root)
    }
}

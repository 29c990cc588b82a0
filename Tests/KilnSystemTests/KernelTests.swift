import Glibc
import Testing
import KilnTestSupport
@testable import KilnSystem

@Suite struct KernelTests {
    @Test func sysctlKeysMapToProcSys() {
        #expect(Kernel.sysctlPath("net.ipv4.ip_forward") == "/proc/sys/net/ipv4/ip_forward")
        #expect(Kernel.sysctlPath("net/ipv4/conf/lan.10/forwarding") == "/proc/sys/net/ipv4/conf/lan.10/forwarding")
        #expect(Kernel.sysctlPath("/kernel/ostype") == "/proc/sys/kernel/ostype")
    }

    @Test func sysctlReadsTheRealKernel() throws {
        #expect(try Kernel.sysctl(get: "kernel.ostype") == "Linux")
    }

    @Test func sysctlWritesInsideATestNamespace() throws {
        try withTestNamespace { name in
            try NetworkNamespace.run(path: "/run/netns/\(name)") {
                #expect(try Kernel.sysctl(get: "net.ipv4.ip_forward") == "0")
                try Kernel.sysctl(set: "net.ipv4.ip_forward", "1")
            }
            let seen = try runProcess(["ip", "netns", "exec", name, "cat", "/proc/sys/net/ipv4/ip_forward"])
            #expect(seen.output == "1\n")
        }
    }

    @Test func sysctlErrorNamesKeyAndPath() {
        #expect(throws: Errno(ENOENT, operation: "sysctl net.kiln.nothing=1 via", subject: "/proc/sys/net/kiln/nothing")) {
            try Kernel.sysctl(set: "net.kiln.nothing", "1")
        }
    }

    @Test func loadModuleNamesTheMissingFile() {
        // The host has no /lib/modules; the EEXIST-is-success path runs in the guest (integration tests).
        #expect(throws: Errno(ENOENT, operation: "open", subject: "/nonexistent/8021q.ko")) {
            try Kernel.loadModule(path: "/nonexistent/8021q.ko")
        }
    }

    @Test func loadModuleRejectsANonModuleWithTheKernelsError() throws {
        try withTemporaryDirectory { dir in
            try FileSystem.writeFile("\(dir)/bogus.ko", "not an ELF module")
            do {
                try Kernel.loadModule(path: "\(dir)/bogus.ko")
                Issue.record("a text file loaded as a kernel module")
            } catch let error as Errno {
                #expect(error.operation == "load module" && error.subject == "\(dir)/bogus.ko")
                // A kernel without module support (ENOSYS) or a process without CAP_SYS_MODULE (EPERM) never
                // reads the file: that is a skip, not a pass.
                if [EPERM, ENOSYS].contains(error.code) {
                    try Test.cancel("module loading is not available here (\(error))")
                }
                #expect([ENOEXEC, EINVAL].contains(error.code), "\(error)")
            }
        }
    }

    @Test func hostnameIsReadable() throws {
        let fromKernel = try FileSystem.readText("/proc/sys/kernel/hostname")
        #expect(try Kernel.hostname() + "\n" == fromKernel)
    }
}

@Suite struct TunTests {
    @Test(arguments: [false, true]) func tunDeviceLivesWithItsDescriptor(tap: Bool) throws {
        try withTestNamespace { name in
            var device: TunDevice? = try NetworkNamespace.run(path: "/run/netns/\(name)") {
                try TunDevice.open(name: tap ? "ktap%d" : "ktun0", tap: tap)
            }
            let ifname = device?.name ?? ""
            #expect(ifname == (tap ? "ktap0" : "ktun0"))
            let shown = try runProcess(["ip", "-n", name, "-d", "link", "show", ifname])
            #expect(shown.status.isSuccess)
            #expect(shown.output.contains("tun type \(tap ? "tap" : "tun")"))
            device = nil
            #expect(try runProcess(["ip", "-n", name, "link", "show", ifname]).status == .exited(1))
            _ = device
        }
    }

    @Test func tooLongNameIsRejected() {
        #expect(throws: Errno(EINVAL, operation: "create TUN device", subject: "a-very-long-interface-name")) {
            _ = try TunDevice.open(name: "a-very-long-interface-name", tap: false)
        }
    }
}

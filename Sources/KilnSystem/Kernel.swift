import CKilnShims
import Glibc

/// Whole-system calls a PID 1 makes: mounts, sysctls, the hostname, kernel modules, power.
public enum Kernel {
    /// mount(2) flags (`MS_*`).
    public struct MountFlags: OptionSet, Sendable {
        public let rawValue: UInt
        public init(rawValue: UInt) { self.rawValue = rawValue }
        public static let readOnly = MountFlags(rawValue: 1)
        public static let noSetUID = MountFlags(rawValue: 2)
        public static let noDevices = MountFlags(rawValue: 4)
        public static let noExec = MountFlags(rawValue: 8)
        public static let remount = MountFlags(rawValue: 32)
        public static let bind = MountFlags(rawValue: 4096)
        public static let recursive = MountFlags(rawValue: 16384)
        public static let `private` = MountFlags(rawValue: 1 << 18)
        public static let relativeAccessTime = MountFlags(rawValue: 1 << 21)
    }

    /// mount(2). `mount("proc", "/proc", "proc", [.noSetUID, .noDevices, .noExec])`. A target that is already
    /// a mount of the same kind fails with EBUSY; callers that tolerate it check `error.is(EBUSY)`.
    public static func mount(
        source: String, target: String, fstype: String, flags: MountFlags = [], data: String? = nil
    ) throws(Errno) {
        try systemCall("mount \(fstype) on", target) {
            if let data { return Glibc.mount(source, target, fstype, flags.rawValue, data) }
            return Glibc.mount(source, target, fstype, flags.rawValue, nil)
        }
    }

    /// umount2(2).
    public static func unmount(_ target: String, detach: Bool = false) throws(Errno) {
        try systemCall("umount", target) { umount2(target, detach ? Int32(MNT_DETACH) : 0) }
    }

    /// The /proc/sys path of a sysctl key. Dots separate components unless the key contains a slash, in which
    /// case slashes do (as sysctl(8) allows), so names with dots stay reachable: `net/ipv4/conf/lan.10/forwarding`.
    public static func sysctlPath(_ key: String) -> String {
        let relative = key.contains("/") ? key : String(key.map { $0 == "." ? "/" : $0 })
        return "/proc/sys/" + relative.drop { $0 == "/" }
    }

    /// Writes a sysctl: `sysctl(set: "net.ipv4.ip_forward", "1")` writes `/proc/sys/net/ipv4/ip_forward`.
    public static func sysctl(set key: String, _ value: String) throws(Errno) {
        let path = sysctlPath(key)
        do {
            try FileSystem.writeFile(path, value + "\n")
        } catch {
            throw Errno(error.code, operation: "sysctl \(key)=\(value) via", subject: path)
        }
    }

    /// Reads a sysctl's current value, trailing newline removed.
    public static func sysctl(get key: String) throws(Errno) -> String {
        var text = try FileSystem.readText(sysctlPath(key), limit: 1 << 20)
        while text.hasSuffix("\n") { text.removeLast() }
        return text
    }

    /// sethostname(2).
    public static func setHostname(_ name: String) throws(Errno) {
        let bytes = Array(name.utf8)
        try systemCall("sethostname", name) { sethostname(name, bytes.count) }
    }

    /// gethostname(2).
    public static func hostname() throws(Errno) -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        try systemCall("gethostname") { gethostname(&buffer, buffer.count - 1) }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Loads a kernel module file with finit_module(2). Returns false when the module was already loaded
    /// (EEXIST counts as success). Compressed files (`.ko.xz`, `.ko.zst`, `.ko.gz`) are handed to the kernel
    /// to decompress (MODULE_INIT_COMPRESSED_FILE, Linux 6.4+).
    @discardableResult
    public static func loadModule(path: String, parameters: String = "") throws(Errno) -> Bool {
        let fd = try FileDescriptor.open(path, .readOnly)
        let compressed = path.hasSuffix(".xz") || path.hasSuffix(".zst") || path.hasSuffix(".gz")
        let flags: Int32 = compressed ? 4 : 0
        do {
            try shimCall("load module", path) { kiln_finit_module(fd.rawValue, parameters, flags) }
            return true
        } catch where error.code == EEXIST {
            return false
        }
    }

    /// sync(2): flush every filesystem.
    public static func sync() {
        Glibc.sync()
    }

    /// Syncs, then restarts the machine. Returns only if the kernel refused.
    public static func reboot() throws(Errno) {
        try shimCall("reboot") { kiln_reboot(1) }
    }

    /// Syncs, then powers the machine off. Returns only if the kernel refused.
    public static func powerOff() throws(Errno) {
        try shimCall("power off") { kiln_reboot(0) }
    }
}

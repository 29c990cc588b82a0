import Foundation
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// Decides between KVM and TCG. `/dev/kvm` can exist and still abort or hang QEMU (it does on Kiln's own build
/// host), so `.auto` boots a kernel under KVM for a few seconds and trusts KVM only if the kernel prints on the
/// serial console. The probe is bounded: QEMU is killed at the deadline and the caller never waits longer. The
/// verdict is cached per host (kernel release + QEMU version) in `<cache>/accel.json`.
public struct AcceleratorProbe: Sendable {
    /// A kernel to boot; without one, any console output (SeaBIOS) counts as success.
    public var kernel: String?
    public var qemuBinary = "qemu-system-x86_64"
    /// Where `accel.json` lives; nil means `$XDG_CACHE_HOME/kiln` (or `~/.cache/kiln`).
    public var cacheDirectory: String?
    /// How long the probe boot may take (not scaled: under working KVM the kernel speaks in well under a second).
    public var deadlineSeconds: Double = 5
    public var kvmDevice = "/dev/kvm"
    public var logger: Logger

    public init(kernel: String?, cacheDirectory: String? = nil, logger: Logger = Logger(label: "kiln.vm.accel")) {
        self.kernel = kernel
        self.cacheDirectory = cacheDirectory
        self.logger = logger
    }

    /// The accelerator to use for `request`: `.kvm`/`.tcg` as asked, `.auto` from the cache or a probe.
    public static func resolve(
        _ request: AcceleratorRequest, kernel: String?, cacheDirectory: String? = nil,
        logger: Logger = Logger(label: "kiln.vm.accel")
    ) -> Accelerator {
        AcceleratorProbe(kernel: kernel, cacheDirectory: cacheDirectory, logger: logger).resolve(request).accelerator
    }

    /// The verdict for `request`, with its reason.
    public func resolve(_ request: AcceleratorRequest) -> AcceleratorVerdict {
        switch request {
        case .kvm: return AcceleratorVerdict(accelerator: .kvm, reason: "requested")
        case .tcg: return AcceleratorVerdict(accelerator: .tcg, reason: "requested")
        case .auto: break
        }
        if let problem = kvmDeviceProblem() {
            return AcceleratorVerdict(accelerator: .tcg, reason: problem)
        }
        let key = hostKey()
        let cache = AcceleratorCache(path: cachePath)
        if let key, let cached = cache.lookup(key) {
            logger.debug("accelerator from cache", metadata: ["accel": "\(cached.accelerator.rawValue)", "key": "\(key)"])
            return AcceleratorVerdict(accelerator: cached.accelerator, reason: cached.reason, cached: true)
        }
        let verdict = probeKVM()
        logger.info("accelerator probe", metadata: ["accel": "\(verdict.accelerator.rawValue)", "reason": "\(verdict.reason)"])
        if let key {
            do { try cache.store(verdict, for: key) } catch {
                logger.warning("cannot cache accelerator verdict", metadata: ["error": "\(error)"])
            }
        }
        return verdict
    }

    /// `<cache>/accel.json`.
    public var cachePath: String {
        if let cacheDirectory { return cacheDirectory + "/accel.json" }
        let environment = ProcessInfo.processInfo.environment
        if let xdg = environment["XDG_CACHE_HOME"], xdg.hasPrefix("/") { return xdg + "/kiln/accel.json" }
        let home = environment["HOME"] ?? NSHomeDirectory()
        return home + "/.cache/kiln/accel.json"
    }

    /// Nil when /dev/kvm can be opened read-write, else why not.
    public func kvmDeviceProblem() -> String? {
        let fd = open(kvmDevice, O_RDWR | O_CLOEXEC)
        if fd < 0 { return "\(kvmDevice): \(errnoText(errno))" }
        Glibc.close(fd)
        return nil
    }

    /// The cache key: host kernel release and the QEMU version line; nil if QEMU cannot say its version.
    public func hostKey() -> String? {
        var name = utsname()
        uname(&name)
        let release = withUnsafeBytes(of: &name.release) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        guard let process = try? ManagedProcess([qemuBinary, "--version"]),
              let termination = process.wait(timeout: deadlineSeconds)
        else { return nil }
        guard termination.isSuccess,
              let version = process.outputText.split(separator: "\n").first.map(String.init), !version.isEmpty
        else { return nil }
        return "\(release) | \(version)"
    }

    /// Boots the kernel under KVM until its first console line, a QEMU exit or the deadline; kills QEMU either way.
    public func probeKVM() -> AcceleratorVerdict {
        var command = QEMUCommand(kernel: kernel, append: kernel == nil ? nil : "console=ttyS0 panic=-1", memoryMiB: 128, accelerator: .kvm)
        // Without a kernel, QEMU's default SeaBIOS is named explicitly so the command has something to boot.
        if kernel == nil { command.firmware = .bios("bios.bin") }
        command.name = "kiln-kvm-probe"
        let argv: [String]
        do { argv = try command.arguments() } catch {
            return AcceleratorVerdict(accelerator: .tcg, reason: "probe command: \(error)")
        }
        let start = Deadline.now()
        let console = ConsoleLog(origin: start, tailLimit: 20)
        let process: ManagedProcess
        do {
            process = try ManagedProcess(.init(
                arguments: argv, standardInput: .null,
                standardOutput: .stream { console.consume($0) }, standardError: .collect(limit: 4096)))
        } catch {
            return AcceleratorVerdict(accelerator: .tcg, reason: "\(error)")
        }
        defer { process.close(grace: 0.2) }
        let deadline = Deadline.after(seconds: deadlineSeconds)
        let wanted = kernel == nil ? { (p: ConsoleEventParser) in p.lineCount > 0 }
                                   : { (p: ConsoleEventParser) in p.milestone(BootMilestone.kernel) != nil }
        while !deadline.hasPassed {
            if console.wait(deadline: deadline, until: wanted).satisfied {
                let seconds = start.seconds(until: .now())
                return AcceleratorVerdict(accelerator: .kvm, reason: "guest console answered after \(formatSeconds(seconds))")
            }
            if let termination = process.termination {
                _ = process.wait(timeout: 0.5)
                let message = process.errorText.split(separator: "\n").first.map(String.init) ?? ""
                return AcceleratorVerdict(accelerator: .tcg, reason: "QEMU under KVM: \(termination)\(message.isEmpty ? "" : ": " + message)")
            }
        }
        return AcceleratorVerdict(accelerator: .tcg, reason: "no console output under KVM within \(formatSeconds(deadlineSeconds))")
    }
}

/// `accel.json`: verdicts keyed by host, written atomically.
struct AcceleratorCache {
    let path: String

    private struct Entry: Codable {
        var accelerator: Accelerator
        var reason: String
    }

    private func load() -> [String: Entry] {
        guard let data = FileManager.default.contents(atPath: path),
              let entries = try? JSONDecoder().decode([String: Entry].self, from: data)
        else { return [:] }
        return entries
    }

    func lookup(_ key: String) -> AcceleratorVerdict? {
        load()[key].map { AcceleratorVerdict(accelerator: $0.accelerator, reason: $0.reason, cached: true) }
    }

    func store(_ verdict: AcceleratorVerdict, for key: String) throws {
        var entries = load()
        entries[key] = Entry(accelerator: verdict.accelerator, reason: verdict.reason)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try encoder.encode(entries)
        let directory = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try writeAtomically(data, to: path)
    }
}

/// Writes to a temporary file in the same directory, then renames it over `path`.
func writeAtomically(_ data: Data, to path: String) throws {
    let temporary = path + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    guard FileManager.default.createFile(atPath: temporary, contents: data) else {
        throw VMError.system(operation: "write", subject: temporary, errno: errno)
    }
    if rename(temporary, path) != 0 {
        let code = errno
        unlink(temporary)
        throw VMError.system(operation: "rename to", subject: path, errno: code)
    }
}

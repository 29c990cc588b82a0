import ArgumentParser
import Foundation
import KilnSystem
import KilnImage
import KilnManifest
import KilnTest
import KilnVM
import Logging

struct Test: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Boot a topology of appliance VMs and test hosts, run its checks, and report.",
        discussion: """
        Builds each VM's appliance, creates a network namespace per test host plus one holding the VMs' TAPs and
        bridges, boots the VMs in parallel, starts the hosts' servers, runs the checks, and tears everything down
        (also on failure or Ctrl-C). Needs root (CAP_NET_ADMIN) for namespaces and TAPs.
        Exit 0 when every VM reached READY and every check passed, 1 otherwise, 2 for an invalid topology.
        """)

    @Argument(help: "The topology, e.g. Appliances/router.topology.yaml.")
    var topology: String

    @Option(name: .long, help: "auto, kvm or tcg.")
    var accel: AcceleratorRequest = .auto

    @Option(name: .long, help: "Write a JUnit XML report here.")
    var junit: String?

    @Option(name: .long, help: "Seconds each VM gets to reach READY (multiplied by KILN_TIMEOUT_SCALE).")
    var bootTimeout: Double = 60

    @OptionGroup var flags: BuildFlags
    @OptionGroup var global: GlobalOptions

    func run() throws {
        let logger = Log.setUp(verbose: global.verbose)
        let (topo, _) = try CLIErrors.manifest { try TopologyLoader.load(topology) }
        LeftoverChildren.sweepAndRecord()
        defer { RunRecord.shared.finish() }
        let base = URL(fileURLWithPath: topology).deletingLastPathComponent()
        var images: [String: BootableImage] = [:]
        for (name, vm) in topo.vms.entries {
            let directory: String
            if let appliance = vm.appliance {
                let manifest = appliance.hasPrefix("/") ? appliance : base.appendingPathComponent(appliance).path
                let info = try BuildRunner.run(flags.options(for: manifest), logger: logger, json: global.json)
                directory = flags.out + "/" + info.name
            } else {
                let image = vm.image ?? ""
                directory = image.hasPrefix("/") ? image : base.appendingPathComponent(image).path
            }
            let info: BuildInfo
            do { info = try BuildInfo.read(directory: directory) } catch { throw CLIErrors.fail("vm \(name): \(error)", code: 2) }
            images[name] = BootableImage(
                directory: directory, kernel: directory + "/vmlinuz", initrd: directory + "/initramfs.cpio.zst", cmdline: info.cmdline,
                nics: info.nics.map { ($0.name, $0.mac) }, artifacts: Dictionary(uniqueKeysWithValues: info.artifacts.map { ($0.file, $0.sha256) }),
                hypervisor: info.hypervisor.map { Hypervisor(path: directory + "/" + $0.file, append: $0.cmdline) },
                bridges: Dictionary((info.bridges ?? []).map { ($0.name, $0.members) }, uniquingKeysWith: { a, _ in a }))
        }
        // `run:` checks may call Kiln itself (e.g. `kiln deploy xen` onto a Xen host VM of the topology): they get
        // this kiln as $KILN, the output root as $KILN_OUT and the topology's folder as $KILN_TOPOLOGY_DIR.
        setenv("KILN", URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().path, 1)
        setenv("KILN_OUT", URL(fileURLWithPath: flags.out).standardizedFileURL.path, 1)
        setenv("KILN_TOPOLOGY_DIR", base.standardizedFileURL.path, 1)
        let kernel = images.values.first?.kernel
        let verdict = AcceleratorProbe(kernel: kernel, logger: logger).resolve(accel)
        FileHandle.standardError.write(Data("testing \(topo.name): \(topo.vms.entries.count) VM(s) with \(verdict.accelerator.rawValue) (\(verdict.reason))\n".utf8))
        let runner = TopologyRunner(topology: topo, path: topology, accelerator: verdict.accelerator, logger: logger)
        let interrupt = Interrupts.install { runner.tearDown() }
        let report = runner.run(images: images, bootTimeout: bootTimeout)
        interrupt.cancel()
        if let junit {
            do { try report.junit.write(toFile: junit, atomically: true, encoding: .utf8) } catch {
                throw CLIErrors.fail("cannot write \(junit): \(error)", code: 3)
            }
        }
        try TestRecord.write(report, directory: flags.out)
        print(global.json ? report.json : report.text, terminator: "")
        if !report.passed { throw ExitCode(1) }
    }
}

/// Children of a dead run, ended before a new run starts; this run's children recorded for the next one.
enum LeftoverChildren {
    static func sweepAndRecord() {
        let ended = RunRecord.shared.start()
        if !ended.isEmpty {
            FileHandle.standardError.write(Data("ended \(ended.count) process group(s) a killed kiln run left behind: \(ended.map(String.init).joined(separator: " "))\n".utf8))
        }
    }
}

/// SIGINT/SIGTERM during a test run: tear the topology down, then exit 130.
///
/// The teardown also ends the run on the main thread (its VMs die), which would otherwise report them failed and
/// exit 1 before the handler's exit 130: `cancel()` waits for a teardown a signal started and exits 130 itself.
final class Interrupts: @unchecked Sendable {
    private var sources: [DispatchSourceSignal] = []
    private let lock = NSLock()
    private var received = false
    private let tornDown = DispatchSemaphore(value: 0)

    static func install(_ cleanup: @escaping @Sendable () -> Void) -> Interrupts {
        let me = Interrupts()
        // Whoever ran us may be gone (a closed terminal or pipe): a write to it must not kill us before the
        // teardown, so SIGPIPE is ignored and the note goes out with write(2), whose error is ignored.
        signal(SIGPIPE, SIG_IGN)
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler {
                guard me.firstSignal() else { return }  // a second signal while the first one's teardown runs
                let note = "\ninterrupted: tearing down the topology\n"
                _ = note.withCString { write(STDERR_FILENO, $0, strlen($0)) }
                cleanup()
                // Whatever is still running (a `run:` check's command in its own session, its children) ends too.
                RunRecord.shared.killAll()
                RunRecord.shared.finish()
                me.tornDown.signal()
                exit(130)
            }
            source.resume()
            me.sources.append(source)
        }
        return me
    }

    private func firstSignal() -> Bool {
        lock.withLock {
            defer { received = true }
            return !received
        }
    }

    /// Ends the handling once the run has returned. If a signal came, the run's result does not count: waits for
    /// the teardown that signal started, then exits 130.
    func cancel() {
        if lock.withLock({ received }) {
            tornDown.wait()
            exit(130)
        }
        for s in sources { s.cancel() }
        signal(SIGINT, SIG_DFL)
        signal(SIGTERM, SIG_DFL)
    }
}

/// `out/<name>/tested.json`: the SHA-256 of each artifact a passing test booted, for `kiln deploy` to check.
enum TestRecord {
    struct Entry: Codable { var topology: String; var passed: Bool; var artifacts: [String: String]; var date: String }

    static func write(_ report: TestReport, directory: String) throws {
        for vm in report.vms where !vm.image.isEmpty {
            let entry = Entry(topology: report.topology, passed: report.passed && vm.ready, artifacts: vm.artifacts,
                              date: ISO8601DateFormatter().string(from: Date()))
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try? encoder.encode(entry).write(to: URL(fileURLWithPath: vm.image + "/tested.json"), options: .atomic)
        }
    }
}

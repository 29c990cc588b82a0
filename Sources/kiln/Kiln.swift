import ArgumentParser
import Foundation
import KilnImage
import KilnManifest
import KilnPackages

/// `kiln`: build, boot, test and deploy network appliances from YAML manifests.
@main
struct Kiln: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kiln",
        abstract: "Build small, reproducible network appliance images and test them in QEMU.",
        discussion: """
        Typical use:
          kiln build Appliances/router.yaml        # out/router/: vmlinuz, initramfs.cpio.zst, build.json, sbom
          kiln boot out/router                      # boot in QEMU until READY, then power off
          kiln test Appliances/router.topology.yaml # VMs + test hosts + checks, JUnit with --junit

        Exit codes: 0 success; 1 a boot or test failed; 2 invalid input (manifest, topology, arguments);
        3 the environment is missing something (a tool, the network, a cache entry with --offline).
        """,
        version: KilnVersion.current,
        subcommands: [Build.self, Boot.self, Test.self, Deploy.self, Validate.self, Schema.self, Lock.self, VPN.self],
        defaultSubcommand: nil
    )

    /// Argument errors exit 2 like every other invalid input (ArgumentParser's own code is 64), and stdout is
    /// line-buffered so a check's result reaches a pipe or a file when it is printed, not at exit.
    static func main() {
        // glibc's `stdout` variable, found by name: Swift 6 refuses a direct reference to a C global var.
        if let symbol = dlsym(nil, "stdout"), let out = symbol.assumingMemoryBound(to: UnsafeMutablePointer<FILE>?.self).pointee {
            setvbuf(out, nil, _IOLBF, 0)
        }
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            if exitCode(for: error) == .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(2)
            }
            exit(withError: error)
        }
    }
}

/// Options every command shares.
struct GlobalOptions: ParsableArguments {
    @Flag(name: .long, help: "Print machine-readable JSON on stdout instead of text (build, test: one object).")
    var json = false

    @Flag(name: [.short, .long], help: "Show debug logs on stderr.")
    var verbose = false
}

struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a manifest and its base image without building.",
        discussion: "Prints every problem as file:line:col: error: setting: message. Exit 0 when valid, 2 when not.")

    @Argument(help: "The appliance manifest, e.g. Appliances/router.yaml.")
    var manifest: String

    @Flag(name: .long, help: "Let `files: source:` read files outside the manifest's directory tree.")
    var allowHostFiles = false

    func run() throws {
        let spec = try CLIErrors.manifest { try ManifestLoader.load(manifest, allowHostFiles: allowHostFiles) }
        for warning in spec.warnings { FileHandle.standardError.write(Data((warning.description + "\n").utf8)) }
        let lockPath = LockFile.path(forManifest: manifest)
        let lock = FileManager.default.fileExists(atPath: lockPath) ? try? LockFile.read(lockPath) : nil
        let (problems, basis) = PackageCheck.check(spec, lock: lock, lockPath: lockPath) {
            PackageCache().cachedIndex(architecture: spec.base.architecture ?? "amd64")
        }
        _ = try CLIErrors.manifest { if !problems.isEmpty { throw ManifestErrors(errors: problems) } }
        let packages: String
        switch basis {
        case let .lock(path): packages = "packages pinned in \(path)"
        case .cachedIndex: packages = "packages found in the cached index"
        case let .lockAndCachedIndex(path): packages = "packages pinned in \(path) or found in the cached index"
        case .none:
            packages = "packages not checked"
            FileHandle.standardError.write(Data(("\(manifest): note: package names not checked: no lock file at \(lockPath) and no cached package index; `kiln lock \(manifest)` resolves them\n").utf8))
        }
        print("\(manifest): ok (\(spec.name): \(spec.interfaces.count) interfaces, \(spec.vlans.count) VLANs, \(spec.routes.count) routes, base \(spec.base.name); \(packages))")
    }
}

struct Schema: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the JSON Schema of appliance manifests.",
        discussion: "Point your editor's YAML language server at it for completion: kiln schema > kiln.schema.json")

    func run() throws { print(ManifestSchema.document.pretty, terminator: "") }
}

/// Maps library errors to the documented exit codes, printing them the way compilers do.
enum CLIErrors {
    static func manifest<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as ManifestErrors {
            FileHandle.standardError.write(Data((e.description + "\n").utf8))
            throw ExitCode(2)
        } catch let e as ManifestError {
            FileHandle.standardError.write(Data((e.description + "\n").utf8))
            throw ExitCode(2)
        }
    }

    static func fail(_ message: String, code: Int32) -> ExitCode {
        FileHandle.standardError.write(Data(("kiln: error: " + message + "\n").utf8))
        return ExitCode(code)
    }
}

/// `kiln vpn import site.conf`: a wg-quick file as the manifest's `vpn:` section.
struct VPN: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vpn", abstract: "WireGuard helpers.", subcommands: [VPNImport.self])
}

struct VPNImport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Print the vpn: section a wg-quick file amounts to (its keys are not printed).",
        discussion: """
        Or use the file as it is: vpn: { wgQuick: { file: site.conf } }. PreUp/PostUp/PreDown/PostDown, Table, FwMark
        and SaveConfig = true cannot be honoured and are errors at their line; DNS is read but not applied.
        """)

    @Argument(help: "The wg-quick file, e.g. /etc/wireguard/wg0.conf.")
    var file: String

    func run() throws {
        let (yaml, warnings) = try CLIErrors.manifest { try WGQuickImport.importYAML(path: file) }
        for warning in warnings { FileHandle.standardError.write(Data((warning.description + "\n").utf8)) }
        print(yaml, terminator: "")
    }
}

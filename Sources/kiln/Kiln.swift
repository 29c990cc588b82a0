import ArgumentParser
import Foundation
import KilnManifest

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
        subcommands: [Build.self, Boot.self, Test.self, Deploy.self, Validate.self, Schema.self, Lock.self],
        defaultSubcommand: nil
    )
}

/// Options every command shares.
struct GlobalOptions: ParsableArguments {
    @Flag(name: .long, help: "Print machine-readable JSON lines on stdout instead of text.")
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

    func run() throws {
        let spec = try CLIErrors.manifest { try ManifestLoader.load(manifest) }
        print("\(manifest): ok (\(spec.name): \(spec.interfaces.count) interfaces, \(spec.vlans.count) VLANs, \(spec.routes.count) routes, base \(spec.base.name))")
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

import ArgumentParser
import Foundation
import KilnImage
import KilnPackages
import KilnManifest
import Logging

/// Options shared by commands that build.
struct BuildFlags: ParsableArguments {
    @Option(name: .long, help: "Output root; artifacts go to <out>/<name>/.")
    var out = "out"

    @Option(name: .long, help: "Repository base URL, overriding the host's apt sources.")
    var mirror: String?

    @Flag(name: .long, help: "Use only the lock file and the cache; fail rather than touch the network.")
    var offline = false

    @Option(name: .long, help: "The guest kiln-init binary (default: beside this kiln, or $KILN_INIT).")
    var `init`: String?

    @Option(name: .long, help: "Cache directory for packages and layers (default: $XDG_CACHE_HOME/kiln).")
    var cacheDir: String?

    @Flag(name: .long, help: "Let `files: source:` read files outside the manifest's directory tree.")
    var allowHostFiles = false

    func options(for manifest: String, updateLock: Bool = false) -> BuildOptions {
        var o = BuildOptions(manifest: manifest)
        o.outputRoot = out
        o.mirror = mirror
        o.offline = offline
        o.updateLock = updateLock
        o.initBinary = `init`
        o.cacheDirectory = cacheDir
        o.allowHostFiles = allowHostFiles
        return o
    }
}

struct Build: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Build an appliance image from a manifest.",
        discussion: """
        Resolves packages (pinned in <manifest>.lock next to the manifest), fetches and verifies them, and writes
        out/<name>/{vmlinuz, initramfs.cpio.zst, sbom.spdx.json, build.json} atomically: a failed build leaves the
        previous output intact. When the base image lists disk formats, also disk.raw (GPT, UEFI unified kernel
        image), disk.qcow2 and disk.iso. With the lock file and a warm cache no network is used.
        An image holding a secret (a VPN private key, a file with a mode others cannot read) is written 0600 in a
        0700 directory; `files: source:` reads only inside the manifest's directory unless --allow-host-files.
        """)

    @Argument(help: "The appliance manifest, e.g. Appliances/router.yaml.")
    var manifest: String

    @OptionGroup var flags: BuildFlags
    @OptionGroup var global: GlobalOptions

    @Flag(name: .long, help: "Re-resolve every package and rewrite the lock file.")
    var updateLock = false

    func run() throws {
        let logger = Log.setUp(verbose: global.verbose)
        let info = try BuildRunner.run(flags.options(for: manifest, updateLock: updateLock), logger: logger, json: global.json)
        if global.json {
            print(String(decoding: try JSONEncoder().encode(info), as: UTF8.self))
        } else {
            let sizes = info.sizes
            print("built \(flags.out)/\(info.name): kernel \(mb(sizes["kernel"])) + initramfs \(mb(sizes["initramfs"])) = \(mb(sizes["total"])) in \(String(format: "%.2f", info.timings["total"] ?? 0))s")
            for a in info.artifacts { print("  \(a.sha256)  \(a.file)") }
        }
    }

    func mb(_ bytes: Int?) -> String { String(format: "%.2f MB", Double(bytes ?? 0) / 1_000_000) }
}

struct Lock: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Resolve and pin every package of a manifest in <manifest>.lock.",
        discussion: "Without --update an existing lock that covers the manifest is kept as it is.")

    @Argument(help: "The appliance manifest.")
    var manifest: String

    @Flag(name: .long, help: "Re-resolve against the repository even when the lock covers the manifest.")
    var update = false

    @Option(name: .long, help: "Repository base URL, overriding the host's apt sources.")
    var mirror: String?

    @OptionGroup var global: GlobalOptions

    func run() throws {
        let logger = Log.setUp(verbose: global.verbose)
        try BuildRunner.mapErrors {
            let spec = try CLIErrors.manifest { try ManifestLoader.load(manifest) }
            let sources = try AptConfiguration.sources(mirror: mirror, distribution: spec.base.distribution)
            let (lock, path, resolved) = try Locking.ensure(spec, sources: sources, cache: PackageCache(logger: logger),
                                                            update: update, offline: false, logger: logger)
            print("\(resolved ? "wrote" : "kept") \(path): \(lock.packages.count) packages, SOURCE_DATE_EPOCH=\(lock.sourceDateEpoch)")
        }
    }
}

/// Runs a build and maps its errors to exit codes.
enum BuildRunner {
    static func run(_ options: BuildOptions, logger: Logger, json: Bool) throws -> BuildInfo {
        let progress: any ProgressReporter = json ? JSONLinesProgress() : ProgressReporters.automatic()
        return try mapErrors {
            try CLIErrors.manifest { try Builder(options: options, logger: logger, progress: progress).build().info }
        }
    }

    static func mapErrors<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as ExitCode { throw e } catch let e as PackageError {
            throw CLIErrors.fail(e.description, code: 3)
        } catch let e as BuildError {
            if case .lockOutdated = e { throw CLIErrors.fail(e.description, code: 3) }
            throw CLIErrors.fail(e.description, code: 2)
        } catch {
            throw CLIErrors.fail("\(error)", code: 1)
        }
    }
}

/// stderr logging; libraries take the logger, only the CLI decides where it goes.
enum Log {
    static func setUp(verbose: Bool) -> Logger {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = verbose ? .debug : .notice
            return handler
        }
        return Logger(label: "kiln")
    }
}

import ArgumentParser
import Foundation
import KilnDeploy
import Logging

/// `kiln deploy`: put the image that passed `kiln test` onto a libvirt or Xen host.
struct Deploy: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Deploy a tested image onto a libvirt (KVM) or Xen host.",
        discussion: """
        Examples:
          kiln deploy libvirt out/router --profile router.deploy.yaml --dry-run    # print the domain XML
          kiln deploy libvirt out/router --profile router.deploy.yaml --connect qemu+ssh://root@kvm1/system
          kiln deploy upgrade out/router --profile router.deploy.yaml              # keeps the old image
          kiln deploy rollback edge-router-1 --pool default
          kiln deploy stop edge-router-1 ; kiln deploy undefine edge-router-1
          kiln deploy xen out/router --profile router.deploy.yaml --dry-run        # print the xl config
          kiln deploy xen out/router --profile router.deploy.yaml --connect ssh://root@xen1
          kiln deploy xen upgrade out/router --profile router.deploy.yaml --connect ssh://root@xen1
          kiln deploy xen rollback|stop|undefine edge-router-1 --connect ssh://root@xen1

        An image is deployed only if out/<name>/tested.json records a passing test of exactly these bytes
        (SHA-256); --untested overrides. The SHA-256 deployed is printed on stdout.
        Exit codes: 0 deployed and READY; 1 deploy failed or READY not seen; 2 invalid input or untested image;
        3 a host tool (virsh, xl, ssh) is missing.
        """,
        subcommands: [DeployLibvirt.self, DeployUpgrade.self, DeployRollback.self, DeployStop.self, DeployUndefine.self, DeployXen.self])
}

/// Options shared by the commands that deploy an image.
struct DeployImageOptions: ParsableArguments {
    @Argument(help: "The built image directory, e.g. out/router.")
    var image: String

    @Option(name: .long, help: "The deploy profile (YAML): memory, vCPUs, NIC backings, boot mode.")
    var profile: String

    @Flag(name: .long, help: "Deploy even without a passing test record for these exact bytes.")
    var untested = false

    func load() throws -> (DeployImage, DeployProfile, [String: String]) {
        let profile = try CLIErrors.manifest { try DeployProfile.load(self.profile) }
        do {
            let image = try DeployImage(directory: image)
            let hashes = try image.verify(try image.files(for: profile.boot), allowUntested: untested)
            return (image, profile, hashes)
        } catch { throw CLIErrors.fail("\(error)", code: 2) }
    }
}

/// Options naming the libvirt connection.
struct ConnectOptions: ParsableArguments {
    @Option(name: [.short, .long], help: "libvirt URI, e.g. qemu:///system or qemu+ssh://root@host/system.")
    var connect = "qemu:///system"
}

/// The wait for READY, only on the commands that start a domain (stop powers off at once, like `virsh destroy`).
struct ReadyOptions: ParsableArguments {
    @Option(name: .long, help: "Seconds to wait for READY on the console.")
    var timeout: Double = 120
}

func printDeployed(_ r: LibvirtDeployer.Result, json: Bool) {
    let current = r.artifacts.filter { $0.role == "current" }
    if json {
        let files = current.map { "\"\($0.file)\":\"\($0.sha256)\"" }.joined(separator: ",")
        print("{\"domain\":\"\(r.domain)\",\"ready_s\":\(r.readyAfter.map { String(format: "%.1f", $0) } ?? "null"),\"sha256\":{\(files)}}")
    } else {
        for a in current { print("\(a.sha256)  \(a.file)") }
        print("\(r.domain): " + (r.readyAfter.map { String(format: "READY after %.1f s", $0) } ?? "started (pty console: READY not awaited)"))
    }
}

func runDeploy(_ body: () throws -> Void) throws {
    do { try body() } catch let e as DeployError {
        if case .toolMissing = e { throw CLIErrors.fail(e.description, code: 3) }
        throw CLIErrors.fail(e.description, code: 1)
    }
}

struct DeployLibvirt: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "libvirt", abstract: "Upload, define and start a domain; wait for READY.")
    @OptionGroup var options: DeployImageOptions
    @OptionGroup var connection: ConnectOptions
    @OptionGroup var ready: ReadyOptions
    @Flag(name: .long, help: "Print the domain XML and touch nothing.")
    var dryRun = false
    @Option(name: .long, help: "With --dry-run: the pool directory shown in paths.")
    var poolPath = "/var/lib/libvirt/images"
    @OptionGroup var global: GlobalOptions

    func run() throws {
        let (image, profile, hashes) = try options.load()
        if dryRun {
            try runDeploy { print(try LibvirtDeployer.dryRun(image: image, profile: profile, hashes: hashes, poolPath: poolPath).xml, terminator: "") }
            return
        }
        let logger = Log.setUp(verbose: global.verbose)
        let deployer = LibvirtDeployer(uri: connection.connect, logger: logger, readyTimeout: ready.timeout)
        try runDeploy { printDeployed(try deployer.deploy(image: image, profile: profile, hashes: hashes), json: global.json) }
    }
}

struct DeployUpgrade: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "upgrade", abstract: "Replace a deployed domain's image, keeping the old one for rollback.")
    @OptionGroup var options: DeployImageOptions
    @OptionGroup var connection: ConnectOptions
    @OptionGroup var ready: ReadyOptions
    @OptionGroup var global: GlobalOptions

    func run() throws {
        let (image, profile, hashes) = try options.load()
        let deployer = LibvirtDeployer(uri: connection.connect, logger: Log.setUp(verbose: global.verbose), readyTimeout: ready.timeout)
        try runDeploy { printDeployed(try deployer.upgrade(image: image, profile: profile, hashes: hashes), json: global.json) }
    }
}

struct DeployRollback: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollback", abstract: "Boot the image the last upgrade replaced.")
    @Argument(help: "The domain name.") var domain: String
    @Option(name: .long, help: "The storage pool holding its volumes.") var pool = "default"
    @OptionGroup var connection: ConnectOptions
    @OptionGroup var ready: ReadyOptions
    @OptionGroup var global: GlobalOptions

    func run() throws {
        let deployer = LibvirtDeployer(uri: connection.connect, logger: Log.setUp(verbose: global.verbose), readyTimeout: ready.timeout)
        try runDeploy { printDeployed(try deployer.rollback(domain: domain, pool: pool), json: global.json) }
    }
}

struct DeployStop: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stop", abstract: "Power a deployed domain off at once (virsh destroy: no shutdown request, no wait).")
    @Argument(help: "The domain name.") var domain: String
    @OptionGroup var connection: ConnectOptions
    @OptionGroup var global: GlobalOptions

    func run() throws {
        let deployer = LibvirtDeployer(uri: connection.connect, logger: Log.setUp(verbose: global.verbose))
        try runDeploy { try deployer.stop(domain: domain) }
    }
}

struct DeployUndefine: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "undefine", abstract: "Stop and undefine a domain and delete its volumes and console log.")
    @Argument(help: "The domain name.") var domain: String
    @Option(name: .long, help: "The storage pool holding its volumes.") var pool = "default"
    @OptionGroup var connection: ConnectOptions
    @OptionGroup var global: GlobalOptions

    func run() throws {
        let deployer = LibvirtDeployer(uri: connection.connect, logger: Log.setUp(verbose: global.verbose))
        try runDeploy { try deployer.undefine(domain: domain, pool: pool) }
    }
}

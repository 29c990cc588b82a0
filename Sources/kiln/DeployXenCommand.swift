import ArgumentParser
import Foundation
import KilnDeploy

/// `kiln deploy xen …`: the Xen half of deploy, with `xl` on a dom0 reached locally or over SSH.
struct DeployXen: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "xen",
        abstract: "Deploy onto a Xen dom0 with xl, locally or over SSH: create, upgrade, rollback, stop, undefine.",
        discussion: """
        The artifacts go to <xen.directory>/<domain>/ on the host by hash (checked there with sha256sum), the
        domain is created from current.cfg there, and READY is read from the guest console xenconsoled logs
        (<xen.consoleLogDirectory>/guest-<domain>.log; `xenconsoled --log=guest`, as a Kiln Xen host runs it).
        """,
        subcommands: [DeployXenCreate.self, DeployXenUpgrade.self, DeployXenRollback.self, DeployXenStop.self, DeployXenUndefine.self],
        defaultSubcommand: DeployXenCreate.self)
}

/// How to reach the dom0.
struct XenConnectOptions: ParsableArguments {
    @Option(name: [.short, .long], help: "'local' (this machine is the dom0) or ssh://[user@]host[:port].")
    var connect = "local"

    @Option(name: .long, help: "SSH private key for --connect ssh://….")
    var identity: String?

    @Option(name: .customLong("ssh-option"), help: "An ssh -o option, e.g. StrictHostKeyChecking=accept-new (repeat for several).")
    var sshOptions: [String] = []

    @Option(name: .long, help: "Seconds to wait for READY on the guest console.")
    var timeout: Double = 120

    func deployer(verbose: Bool) throws -> XenDeployer {
        let host: XenHost
        do { host = try XenHost(uri: connect, identity: identity, sshOptions: sshOptions) } catch {
            throw CLIErrors.fail("\(error)", code: 2)
        }
        if case .local = host.transport, !FileManager.default.fileExists(atPath: "/proc/xen/privcmd") {
            throw CLIErrors.fail("this machine is not a Xen dom0 (no /proc/xen/privcmd): use --connect ssh://root@<dom0>, or --dry-run", code: 3)
        }
        return XenDeployer(host: host, logger: Log.setUp(verbose: verbose), readyTimeout: timeout)
    }
}

/// A deployed domain and where its files are on the host (the profile's `xen:` settings).
struct XenDomainOptions: ParsableArguments {
    @Argument(help: "The domain name.") var domain: String
    @Option(name: .long, help: "The profile's xen.directory.") var directory = "/var/lib/kiln"
    @Option(name: .long, help: "The profile's xen.consoleLogDirectory.") var consoleLogDirectory = "/var/log/xen/console"

    var profile: DeployProfile {
        DeployProfile(xen: .init(directory: directory, consoleLogDirectory: consoleLogDirectory))
    }
}

func printDeployed(_ r: XenDeployer.Result, json: Bool) {
    if json {
        let files = r.artifacts.map { "\"\($0.file)\":\"\($0.sha256)\"" }.joined(separator: ",")
        print("{\"domain\":\"\(r.domain)\",\"ready_s\":\(String(format: "%.1f", r.readyAfter)),\"sha256\":{\(files)}}")
    } else {
        for a in r.artifacts { print("\(a.sha256)  \(a.file)") }
        print("\(r.domain): " + String(format: "READY after %.1f s", r.readyAfter))
    }
}

struct DeployXenCreate: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "Upload the image, create the domain, wait for READY.")
    @OptionGroup var options: DeployImageOptions
    @OptionGroup var connection: XenConnectOptions
    @Flag(name: .long, help: "Print the xl config and touch nothing.")
    var dryRun = false
    @OptionGroup var global: GlobalOptions

    func run() throws {
        let (image, profile, hashes) = try options.load()
        if dryRun {
            try runDeploy { print(try XenConfig.plan(image: image, profile: profile, hashes: hashes).text, terminator: "") }
            return
        }
        let deployer = try connection.deployer(verbose: global.verbose)
        try runDeploy { printDeployed(try deployer.deploy(image: image, profile: profile, hashes: hashes), json: global.json) }
    }
}

struct DeployXenUpgrade: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "upgrade", abstract: "Replace a domain's image, keeping the old one for rollback (started again if the new one fails).")
    @OptionGroup var options: DeployImageOptions
    @OptionGroup var connection: XenConnectOptions
    @OptionGroup var global: GlobalOptions

    func run() throws {
        let (image, profile, hashes) = try options.load()
        let deployer = try connection.deployer(verbose: global.verbose)
        try runDeploy { printDeployed(try deployer.upgrade(image: image, profile: profile, hashes: hashes), json: global.json) }
    }
}

struct DeployXenRollback: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rollback", abstract: "Start the image the last upgrade replaced.")
    @OptionGroup var domain: XenDomainOptions
    @OptionGroup var connection: XenConnectOptions
    @OptionGroup var global: GlobalOptions

    func run() throws {
        let deployer = try connection.deployer(verbose: global.verbose)
        try runDeploy { printDeployed(try deployer.rollback(domain: domain.domain, profile: domain.profile), json: global.json) }
    }
}

struct DeployXenStop: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stop", abstract: "Destroy the running domain; its files stay for a later start.")
    @OptionGroup var domain: XenDomainOptions
    @OptionGroup var connection: XenConnectOptions
    @OptionGroup var global: GlobalOptions

    func run() throws {
        let deployer = try connection.deployer(verbose: global.verbose)
        try runDeploy { try deployer.stop(domain: domain.domain) }
    }
}

struct DeployXenUndefine: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "undefine", abstract: "Destroy the domain and remove its files and console log from the host.")
    @OptionGroup var domain: XenDomainOptions
    @OptionGroup var connection: XenConnectOptions
    @OptionGroup var global: GlobalOptions

    func run() throws {
        let deployer = try connection.deployer(verbose: global.verbose)
        try runDeploy { try deployer.undefine(domain: domain.domain, profile: domain.profile) }
    }
}

import Foundation
import Testing

/// The conventions of the kiln CLI, run as a user runs it.
struct CLITests {
    /// An unknown option is invalid input like any other: exit 2, as the README says (ArgumentParser's own is 64).
    @Test func argumentErrorsExit2AndVersionIsPrinted() throws {
        let bad = try Kiln.run(["build", "--no-such-option", "Appliances/router.yaml"])
        #expect(bad.status == 2, "\(bad.stderr)")
        #expect(bad.stderr.contains("--no-such-option"), "\(bad.stderr)")
        let version = try Kiln.run(["--version"])
        #expect(version.status == 0)
        #expect(version.stdout.split(separator: ".").count == 3, "\(version.stdout)")
    }

    /// `deploy stop` powers off at once and so has no `--timeout` to document and ignore; the commands that wait
    /// for READY keep theirs.
    @Test func deployStopTakesNoTimeout() throws {
        let help = try Kiln.run(["deploy", "stop", "--help"])
        #expect(help.status == 0 && !help.stdout.contains("--timeout"), "\(help.stdout)")
        let given = try Kiln.run(["deploy", "stop", "edge-1", "--timeout", "5"])
        #expect(given.status == 2 && given.stderr.contains("--timeout"), "\(given.stderr)")
        for command in [["deploy", "libvirt"], ["deploy", "upgrade"], ["deploy", "rollback"]] {
            #expect(try Kiln.run(command + ["--help"]).stdout.contains("--timeout"), "\(command)")
        }
    }

    /// A firewall manifest validates (and so builds) without root: libnftables' dry run needs CAP_NET_ADMIN, so an
    /// unprivileged builder's ruleset is checked with `nft -c` in a user and network namespace of its own.
    @Test func aFirewallManifestValidatesWithoutRoot() throws {
        let run = try Kiln.run(["validate", "Appliances/router.yaml"], unprivileged: true)
        #expect(run.status == 0, "\(run.stderr)")
    }

    /// A manifest copied anywhere, validated from anywhere, finds the base of the Kiln that runs (its checkout's
    /// Images/, found above the binary); a topology's absolute appliance path is taken as given.
    @Test func aCopiedManifestFindsKilnsOwnBase() throws {
        guard let bin = Kiln.bin else { throw Kiln.Missing() }
        let dir = try Kiln.temporaryDirectory("base")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/elsewhere", withIntermediateDirectories: true)
        try "apiVersion: kiln/v1\nname: copied\nbase: debian-cloud\n".write(toFile: dir + "/m.yaml", atomically: true, encoding: .utf8)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: bin + "/kiln")
        p.arguments = ["validate", dir + "/m.yaml"]
        p.currentDirectoryURL = URL(fileURLWithPath: dir + "/elsewhere")
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(p.terminationStatus == 0, "\(stderr)")
    }
}

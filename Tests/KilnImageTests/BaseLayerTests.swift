import Foundation
import Glibc
import Testing
@testable import KilnImage

/// What every image has before the manifest adds anything: the accounts daemons drop to and Debian's /var links.
struct BaseLayerTests {
    @Test func daemonsFindTheirAccountsAndVarRun() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        try dir.write("root/sbin/kiln-init", [0x7f])
        let plan = LayerPlan(release: "6.1.0", kernelRoot: dir.path, modules: [], libraryRoot: dir.path + "/root",
                             libraries: ELFClosure.Result(paths: [], resolved: [:]), initBinary: dir.path + "/root/sbin/kiln-init",
                             files: [], config: [])
        let base = try #require(try plan.layers().first { $0.name == "base" })
        func contents(_ path: String) -> String? {
            for entry in base.entries where entry.path == path {
                if case .regular(.bytes(let bytes)) = entry.kind { return String(decoding: bytes, as: UTF8.self) }
            }
            return nil
        }
        func link(_ path: String) -> String? {
            for entry in base.entries where entry.path == path { if case .symlink(let target) = entry.kind { return target } }
            return nil
        }
        let passwd = try #require(contents("/etc/passwd")).split(separator: "\n").map { $0.split(separator: ":", omittingEmptySubsequences: false) }
        let group = try #require(contents("/etc/group")).split(separator: "\n").map { $0.split(separator: ":", omittingEmptySubsequences: false) }
        #expect(passwd.allSatisfy { $0.count == 7 } && group.allSatisfy { $0.count == 4 })
        #expect(passwd.first { $0[0] == "nobody" }.map { "\($0[2]):\($0[3])" } == "65534:65534")
        #expect(passwd.first { $0[0] == "root" }?[2] == "0")
        #expect(Set(group.map { String($0[0]) }).isSuperset(of: ["root", "nogroup", "dip"]))
        // glibc's own reader agrees: fgetpwent parses every line.
        let path = dir.path + "/passwd"
        try dir.write("passwd", Array(try #require(contents("/etc/passwd")).utf8))
        let f = try #require(fopen(path, "r"))
        defer { fclose(f) }
        var names: [String] = []
        while let p = fgetpwent(f) { names.append(String(cString: p.pointee.pw_name)) }
        #expect(names == ["root", "daemon", "nobody"])
        #expect(link("/var/run") == "../run")
        #expect(link("/var/lock") == "../run/lock")
    }
}

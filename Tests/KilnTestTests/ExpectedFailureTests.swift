import Foundation
import KilnTest
import Testing

/// `expect-failure` on a topology VM: decoding, validation, and the verdict it gives the report.
struct ExpectedFailureTests {
    static func topology(_ vm: String) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-topo-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("t.topology.yaml").path
        let text = """
            apiVersion: kiln/v1
            name: t
            vms:
              fw: \(vm)
            hosts: { lan: { addresses: [10.0.0.10/24] } }
            links: [ [lan, fw.lan] ]
            checks:
              - { on: lan, ping: 10.0.0.1, expect: fail }

            """
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func decodesTheExpectedPhase() throws {
        let path = try Self.topology("{ appliance: fw.yaml, expect-failure: firewall }")
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        let (t, _) = try TopologyLoader.load(path)
        #expect(t.vms["fw"]?.expectFailure == "firewall")
    }

    @Test func aVMWithoutItMustBeReady() throws {
        let path = try Self.topology("{ appliance: fw.yaml }")
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        let (t, _) = try TopologyLoader.load(path)
        #expect(t.vms["fw"]?.expectFailure == nil)
    }

    @Test func rejectsSomethingThatIsNotAPhaseName() throws {
        let path = try Self.topology("{ appliance: fw.yaml, expect-failure: \"Fire wall\" }")
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        do {
            _ = try TopologyLoader.load(path)
            Issue.record("an invalid phase name was accepted")
        } catch {
            #expect("\(error)".contains("vms.fw.expect-failure: 'Fire wall' is not a kiln-init phase name"), "\(error)")
        }
    }

    @Test func vCPUsAndMemoryAreCheckedWithTheirPlace() throws {
        let good = try Self.topology("{ appliance: fw.yaml, cpus: 1, memory: 128 }")
        defer { try? FileManager.default.removeItem(atPath: (good as NSString).deletingLastPathComponent) }
        let (t, _) = try TopologyLoader.load(good)
        #expect(t.vms["fw"]?.cpus == 1 && t.vms["fw"]?.memory == 128)
        for (vm, message) in [("{ appliance: fw.yaml, cpus: 0 }", "vms.fw.cpus: 0 vCPUs is outside 1…16"),
                              ("{ appliance: fw.yaml, memory: 8 }", "vms.fw.memory: 8 MiB is outside 64…16384")] {
            let path = try Self.topology(vm)
            defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
            do {
                _ = try TopologyLoader.load(path)
                Issue.record("\(vm) was accepted")
            } catch {
                #expect("\(error)".contains(message) && "\(error)".contains("t.topology.yaml:4:"), "\(error)")
            }
        }
    }

    @Test func rejectsAMisspelledKey() throws {
        let path = try Self.topology("{ appliance: fw.yaml, expect-failur: firewall }")
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        do {
            _ = try TopologyLoader.load(path)
            Issue.record("a misspelled key was accepted")
        } catch {
            #expect("\(error)".contains("expect-failur"), "\(error)")
        }
    }

    static func vm(ready: Bool, failedPhase: String?, expect: String?) -> VMResult {
        VMResult(name: "fw", image: "", artifacts: [:], accelerator: "tcg", ready: ready, milestones: [],
                 failedPhase: failedPhase, error: failedPhase.map { "\($0) broke" }, consoleTail: ["KILN {\"event\":\"firewall-failed\"}"],
                 expectedFailure: expect)
    }

    static let passing = [CheckResult(name: "c", passed: true, detail: "", seconds: 0)]

    @Test func verdicts() {
        #expect(Self.vm(ready: true, failedPhase: nil, expect: nil).asExpected)
        #expect(!Self.vm(ready: false, failedPhase: "firewall", expect: nil).asExpected)
        #expect(Self.vm(ready: false, failedPhase: "firewall", expect: "firewall").asExpected)
        #expect(!Self.vm(ready: false, failedPhase: "network", expect: "firewall").asExpected, "another phase failing is not what was expected")
        #expect(!Self.vm(ready: false, failedPhase: nil, expect: "firewall").asExpected, "a boot that timed out did not fail in the phase")
        #expect(!Self.vm(ready: true, failedPhase: nil, expect: "firewall").asExpected, "READY when a failure was expected fails the run")
    }

    @Test func reportPassesOnTheExpectedFailure() {
        let r = TestReport(topology: "t", vms: [Self.vm(ready: false, failedPhase: "firewall", expect: "firewall")], checks: Self.passing, seconds: 1)
        #expect(r.passed)
        #expect(r.text.contains("vm fw [tcg]: FAILED as expected"), "\(r.text)")
        #expect(r.text.contains("failed phase: firewall: firewall broke"), "\(r.text)")
        #expect(r.text.contains("1 passed, 0 failed"), "\(r.text)")
        #expect(r.junit.contains("failures=\"0\"") && !r.junit.contains("<failure"), "\(r.junit)")
    }

    @Test func reportFailsWhenTheBoxCameUpInstead() {
        let r = TestReport(topology: "t", vms: [Self.vm(ready: true, failedPhase: nil, expect: "firewall")], checks: Self.passing, seconds: 1)
        #expect(!r.passed)
        #expect(r.text.contains("expected to fail in phase firewall, but it reached READY"), "\(r.text)")
        #expect(r.text.contains("1 passed, 1 failed"), "\(r.text)")
        #expect(r.junit.contains("failures=\"1\"") && r.junit.contains("reached READY, expected to fail in phase firewall"), "\(r.junit)")
    }

    @Test func reportPrintsKilnInitsOwnBootFigure() {
        var vm = Self.vm(ready: true, failedPhase: nil, expect: nil)
        #expect(!TestReport(topology: "t", vms: [vm], checks: Self.passing, seconds: 1).text.contains("kiln-init /init"))
        vm.initToReadyMilliseconds = 412.6
        let r = TestReport(topology: "t", vms: [vm], checks: Self.passing, seconds: 1)
        #expect(r.text.contains("    kiln-init /init → READY 413 ms (guest clock)\n"), "\(r.text)")
        #expect(r.json.contains("\"initToReadyMilliseconds\" : 412.6"), "\(r.json)")
    }

    @Test func reportFailsOnAnotherPhase() {
        let r = TestReport(topology: "t", vms: [Self.vm(ready: false, failedPhase: "network", expect: "firewall")], checks: Self.passing, seconds: 1)
        #expect(!r.passed)
        #expect(r.text.contains("vm fw [tcg]: FAILED "), "\(r.text)")
        #expect(!r.text.contains("as expected"), "\(r.text)")
    }
}

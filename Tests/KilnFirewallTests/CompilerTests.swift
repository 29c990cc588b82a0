import Glibc
import KilnConfig
import Testing
@testable import KilnFirewall

/// Golden text: the compiled ruleset for `Golden/sample.json` must equal `Golden/sample.nft` byte for byte.
/// Regenerate with `KILN_UPDATE_GOLDEN=1 swift test --filter KilnFirewallTests` and review the diff.
@Suite struct CompilerTests {
    static func sample() throws -> FirewallSpec {
        try decodeSpec(try readFile(goldenDirectory + "/sample.json")).loadingSetFiles(baseDirectory: goldenDirectory)
    }

    static func compareGolden(_ name: String, _ text: String) throws {
        let path = goldenDirectory + "/" + name
        if getenv("KILN_UPDATE_GOLDEN") != nil { try writeFile(path, text) }
        let expected = try readFile(path)
        if expected != text {
            let a = expected.split(separator: "\n", omittingEmptySubsequences: false)
            let b = text.split(separator: "\n", omittingEmptySubsequences: false)
            let first = zip(a, b).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(a.count, b.count)
            Issue.record("\(name) differs at line \(first + 1):\n  golden: \(first < a.count ? String(a[first]) : "<end>")\n  actual: \(first < b.count ? String(b[first]) : "<end>")")
        }
    }

    @Test func sampleMatchesGolden() throws {
        let spec = try Self.sample()
        #expect(spec.validate() == [])
        try Self.compareGolden("sample.nft", FirewallCompiler.compile(spec).text)
    }

    @Test func bootstrapMatchesGolden() throws {
        try Self.compareGolden("bootstrap.nft", FirewallCompiler.bootstrap())
    }

    @Test func minimalMatchesGolden() throws {
        let spec = try decodeSpec(#"{"zones": {"lan": ["eth1"], "wan": ["eth0"]}, "policies": [{"from": "lan", "to": "wan", "action": "accept"}], "masquerade": ["wan"], "defaults": {"anti-spoofing": false, "output": "drop"}}"#)
        #expect(spec.validate() == [])
        try Self.compareGolden("minimal.nft", FirewallCompiler.compile(spec).text)
    }

    @Test func compilingTwiceGivesTheSameText() throws {
        let spec = try Self.sample()
        #expect(FirewallCompiler.compile(spec) == FirewallCompiler.compile(spec))
    }

    @Test func sourceMapNamesTheSettingOfEachRuleLine() throws {
        let compiled = FirewallCompiler.compile(try Self.sample())
        let lines = compiled.text.split(separator: "\n", omittingEmptySubsequences: false)
        func originOf(_ needle: String) -> String? {
            guard let i = lines.firstIndex(where: { $0.contains(needle) }) else { return "<no line with \(needle)>" }
            return compiled.origin(ofLine: i + 1)
        }
        #expect(originOf("tcp dport 8080-8090 counter reject with tcp reset") == "firewall.rules[2]")
        #expect(originOf("dnat ip to 10.30.0.10:8080") == "firewall.forwards[0]")
        #expect(originOf("192.0.2.7,") == "firewall.sets.blocklist.elements[3]")
        #expect(originOf("100.64.0.0/10,") == "firewall.sets.blocklist.file (blocklist.txt:3)")
        #expect(originOf("fib saddr . iif oif missing") == "firewall.defaults.anti-spoofing")
        #expect(originOf("\"lan.10\" . \"wan\" : jump lan-wan") == "firewall.zones.lan.interfaces[0]")
        #expect(originOf("chain input {") == nil)
        // Both lines of the split IPv4/IPv6 rule point to the same rule.
        #expect(lines.filter { $0.contains("th dport @webports") }.count == 2)
        #expect(compiled.line(5) == "table inet kiln {")
    }

    @Test func coveredPrefixesAreDroppedAndOverlappingPortRangesMerged() throws {
        let compiled = FirewallCompiler.compile(try Self.sample()).text
        #expect(!compiled.contains("198.18.4.0/24"))
        #expect(!compiled.contains("203.0.113.0/25"))
        #expect(compiled.contains("8000-8120,"))
    }

    @Test func requiredModulesFollowTheCompiledRuleset() throws {
        let spec = try Self.sample()
        let modules = FirewallCompiler.requiredModules(spec, ruleset: FirewallCompiler.compile(spec).text)
        #expect(modules.first == "nf_tables")
        #expect(modules.contains("nft_fib_inet") && modules.contains("nft_chain_nat") && modules.contains("nft_masq"))
        let plainSpec = FirewallSpec(defaults: Defaults(antiSpoofing: false))
        let plain = FirewallCompiler.requiredModules(plainSpec, ruleset: FirewallCompiler.compile(plainSpec).text)
        #expect(!plain.contains("nft_fib_inet") && !plain.contains("nf_nat"))
        // log and limit come only with statements that use them, not with a prefix or a set that names them.
        let words = FirewallCompiler.requiredModules(plainSpec, ruleset: """
            table inet t { set log { type ipv4_addr; } # limit rate
              chain c { ip saddr @log counter comment "log limit fib" accept } }
            """)
        #expect(!words.contains("nft_log") && !words.contains("nft_limit") && !words.contains("nft_fib"))
        let logging = FirewallCompiler.requiredModules(plainSpec, ruleset: "chain c { limit rate 5/second log prefix \"x: \" drop }")
        #expect(logging.contains("nft_log") && logging.contains("nf_log_syslog") && logging.contains("nft_limit"))
    }
}

import Glibc
import KilnConfig
import Testing
@testable import KilnFirewall

/// The real libnftables: dry runs of every golden ruleset, errors mapped back to the manifest, and
/// atomic apply inside a network namespace made for the test.
@Suite(.serialized) struct NftablesTests {
    @Test(arguments: ["sample.nft", "minimal.nft", "bootstrap.nft"])
    func goldenRulesetPassesDryRun(_ name: String) throws {
        let text = try readFile(goldenDirectory + "/" + name)
        let lab = NamespaceLab("d")
        defer { lab.destroy() }
        let ns = try lab.add("x")
        try inNamespace(ns) {
            let nft = try Nftables()
            try nft.check(text)
            // A dry run commits nothing.
            #expect(!(try nft.run("list tables")).contains("kiln"))
        }
    }

    @Test func parsesLibnftablesErrorText() {
        let output = """
        <cmdline>:45:27-31: Error: syntax error, unexpected '}', expecting newline or semicolon
          chain lan-self { accept }
                                  ^
        netlink: Error: cache initialization failed: Operation not permitted

        """
        let d = NftError.parse(output)
        #expect(d.count == 2)
        #expect(d[0].line == 45 && d[0].columns == 27...31)
        #expect(d[0].message == "syntax error, unexpected '}', expecting newline or semicolon")
        #expect(d[0].text == "  chain lan-self { accept }")
        #expect(d[1].line == nil && d[1].message == "cache initialization failed: Operation not permitted")
    }

    @Test func rejectedRawRuleIsMappedToItsSetting() throws {
        var spec = try CompilerTests.sample()
        spec.rules.append(Rule(from: "lan", to: "self", proto: [.udp], action: .accept, raw: "udp dport 99999"))
        #expect(spec.validate() == [])
        let compiled = FirewallCompiler.compile(spec)
        let lab = NamespaceLab("r")
        defer { lab.destroy() }
        let ns = try lab.add("x")
        let error = try inNamespace(ns) { () -> NftError? in
            let nft = try Nftables()
            do throws(NftError) { try nft.check(compiled); return nil } catch { return error }
        }
        let diagnostic = try #require(error?.diagnostics.first)
        #expect(diagnostic.origin == "firewall.rules[7]", "\(error?.output ?? "")")
        #expect(diagnostic.message == "Service out of range")
        #expect(diagnostic.text?.contains("udp dport 99999") == true)
        #expect(error?.description.hasPrefix("firewall.rules[7]: nftables: ") == true)
    }

    @Test func rejectedLineIsMappedThroughTheSourceMap() throws {
        // Corrupt the line that rules[2] produced, keep the source map: the error must name rules[2].
        let compiled = FirewallCompiler.compile(try CompilerTests.sample())
        let broken = CompiledRuleset(
            text: compiled.text.replacingFirst("tcp dport 8080-8090 counter", with: "tcp dport 8090-8080 counter"),
            origins: compiled.origins)
        let lab = NamespaceLab("m")
        defer { lab.destroy() }
        let ns = try lab.add("x")
        let error = try inNamespace(ns) { () -> NftError? in
            do throws(NftError) { try Nftables().check(broken); return nil } catch { return error }
        }
        let diagnostic = try #require(error?.diagnostics.first)
        #expect(diagnostic.origin == "firewall.rules[2]")
        #expect(diagnostic.line != nil)
    }

    @Test func applyReplacesAtomicallyAndAFailureLeavesThePreviousRuleset() throws {
        let spec = try CompilerTests.sample()
        let compiled = FirewallCompiler.compile(spec)
        let lab = NamespaceLab("a")
        defer { lab.destroy() }
        let ns = try lab.add("x")
        try inNamespace(ns) {
            let nft = try Nftables()
            try nft.apply(FirewallCompiler.bootstrap())
            #expect(try nft.run("list chain inet kiln input").contains("policy drop"))
            try nft.apply(compiled)
            try nft.apply(compiled)  // idempotent: the table is replaced, not merged
            let listed = try nft.run("list table inet kiln")
            #expect(listed.contains("iifname . oifname vmap @forward-zones"))
            #expect(listed.components("chain wan-dmz {") == 1)
            let counters = try nft.run("list counters table inet kiln")
            for name in FirewallCompiler.counters { #expect(counters.contains("counter \(name) {")) }

            var broken = spec
            broken.rules.append(Rule(from: "wan", to: "self", action: .accept, raw: "meta mark 0x1 meta mark 0x1 tcp dport 70000"))
            #expect(throws: NftError.self) { try nft.apply(FirewallCompiler.compile(broken)) }
            #expect(try nft.run("list table inet kiln") == listed)

            // Bootstrap over the full ruleset closes the box again in one step.
            try nft.apply(FirewallCompiler.bootstrap())
            #expect(!(try nft.run("list table inet kiln")).contains("forward-zones"))
        }
    }
}

extension String {
    func replacingFirst(_ target: String, with replacement: String) -> String {
        guard let r = find(target, in: self[...]) else { return self }
        return String(self[..<r.lowerBound]) + replacement + String(self[r.upperBound...])
    }
    func components(_ needle: String) -> Int {
        var count = 0, rest = self[...]
        while let r = find(needle, in: rest) { count += 1; rest = rest[r.upperBound...] }
        return count
    }
}

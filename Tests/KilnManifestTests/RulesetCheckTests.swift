import Foundation
import KilnFirewall
import Testing
@testable import KilnManifest

/// The dry run a builder without CAP_NET_ADMIN gets (`unshare -Urn nft -c`) accepts what libnftables accepts
/// and names the same line and setting for what it rejects.
struct RulesetCheckTests {
    @Test func theRoutersRulesetPassesInItsOwnNamespace() throws {
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let spec = try ManifestLoader.load(repo.appendingPathComponent("Appliances/router.yaml").path)
        let ruleset = try #require(spec.firewall?.ruleset)
        try RulesetCheck.inOwnNamespace(ruleset)
    }

    @Test func aRejectedRuleNamesItsLineAndSettingAsLibnftablesDoes() throws {
        let text = "table inet kiln {\n  chain input {\n    type filter hook input priority 0; policy drop;\n    tcp dport 22 jump nowhere\n  }\n}\n"
        let ruleset = CompiledRuleset(text: text, origins: [nil, nil, nil, "firewall.rules[0]", nil, nil])
        var inProcess: NftError?
        do { try Nftables().check(ruleset) } catch { inProcess = error }
        var unshared: NftError?
        do { try RulesetCheck.inOwnNamespace(ruleset) } catch { unshared = error }
        let a = try #require(inProcess?.diagnostics.first), b = try #require(unshared?.diagnostics.first, "\(String(describing: unshared))")
        #expect(b.line == 4 && b.origin == "firewall.rules[0]", "\(b)")
        #expect(a.line == b.line && a.message == b.message, "\(a) vs \(b)")
    }
}

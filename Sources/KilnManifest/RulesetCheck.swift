import Foundation
import KilnFirewall
import KilnSystem

/// The build's dry run of a compiled ruleset.
///
/// libnftables needs CAP_NET_ADMIN even for a dry run (it reads the kernel's ruleset cache). A builder without it
/// (not root, or root in a container that dropped it) gets `nft -c` in a user and network namespace of its own
/// (`unshare -Urn`): the same parser and evaluator, against an empty kernel state, so `kiln build` needs no root.
enum RulesetCheck {
    static func check(_ ruleset: CompiledRuleset) throws(NftError) {
        do {
            try Nftables().check(ruleset)
        } catch where error.output.contains("Operation not permitted") {
            try inOwnNamespace(ruleset)
        }
    }

    /// `unshare -Urn nft -c -f FILE`, its errors parsed and mapped like libnftables' own.
    static func inOwnNamespace(_ ruleset: CompiledRuleset) throws(NftError) {
        let path = NSTemporaryDirectory() + "kiln-ruleset-\(getpid())-\(UUID().uuidString).nft"
        defer { unlink(path) }
        let result: ToolRun
        do {
            try FileSystem.writeFile(path, ruleset.text, mode: 0o600)
            result = try ToolRun.run(["unshare", "-Urn", "nft", "-c", "-f", path], timeout: 60)
        } catch {
            throw NftError(operation: .check, output: "cannot run `unshare -Urn nft -c` for a check without CAP_NET_ADMIN: \(error)", diagnostics: [])
        }
        guard result.status.isSuccess else {
            let output = String(decoding: result.stderr + result.stdout, as: UTF8.self)
            throw ruleset.explain(NftError(operation: .check, output: output, diagnostics: NftError.parse(output)))
        }
    }
}

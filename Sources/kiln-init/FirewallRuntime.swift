import KilnFirewall

/// Applies an nftables ruleset through libnftables: one run, one kernel transaction. If it fails, whatever
/// was loaded before (the default-drop bootstrap) stays in force.
enum FirewallRuntime {
    static func apply(_ ruleset: String) throws {
        let nft = try Nftables()
        try nft.apply(ruleset)
    }
}

import Glibc
import KilnConfig
import KilnFirewall
import KilnNetlink

/// Puts the interception in place in the calling thread's network namespace: the nftables table
/// (`InterceptRules`), then `ip rule add fwmark MARK lookup TABLE pref PRIORITY` and `ip route add local 0.0.0.0/0 dev lo
/// table TABLE` over rtnetlink (IPv6 too where the kernel has it). Safe to repeat after a restart: the table is
/// replaced in one transaction, and a rule or route already present is left as it is.
public enum Interception {
    /// Returns notes worth logging (IPv6 unavailable).
    @discardableResult
    public static func install(_ config: WANOptConfig) throws(WANOptError) -> [String] {
        do {
            let nft = try Nftables()
            try nft.apply(InterceptRules.ruleset(config))
        } catch {
            throw WANOptError("interception rules (nftables table \(InterceptRules.table)): \(error)")
        }
        let session: NetlinkSession
        do { session = try NetlinkSession() } catch { throw WANOptError("\(error)") }
        let loopback: Int32
        do {
            loopback = try session.link(named: "lo").index
            try session.setUp(index: loopback)  // a local route needs its device up
        } catch { throw WANOptError("\(error)") }
        var notes: [String] = []
        for family in [AddressFamily.inet, AddressFamily.inet6] {
            do {
                do {
                    try session.addFirewallMarkRule(family: family, mark: config.mark, table: config.table, priority: config.rulePriority)
                } catch where error.code == EEXIST {}
                do {
                    try session.addLocalDefaultRoute(family: family, interface: loopback, table: config.table)
                } catch where error.code == EEXIST {}
            } catch {
                // IPv6 may be absent or disabled on the box; IPv4 interception still works.
                guard family == AddressFamily.inet6 else { throw WANOptError("\(error)") }
                notes.append("IPv6 connections are not intercepted: \(error)")
            }
        }
        return notes
    }
}

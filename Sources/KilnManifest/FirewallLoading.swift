import Foundation
import KilnConfig
import KilnFirewall

/// Turns the manifest's `firewall` section (and a router's `masquerade`) into one nftables ruleset, checks it
/// with libnftables in a dry run, and maps every problem back to the manifest line it came from: a manifest
/// that nftables would reject never produces an image.
enum FirewallLoading {
    static func compile(_ manifest: ApplianceManifest, interfaces: [InterfaceName], manifestDirectory: String, locator: Locator,
                        problems: inout [ManifestError]) -> CompiledFirewall? {
        guard var spec = effectiveSpec(manifest, interfaces: interfaces, locator: locator, problems: &problems) else { return nil }
        for issue in spec.validate(interfaces: interfaces) {
            problems.append(ManifestError(location: locator.location(dotted: issue.path), path: issue.path, message: issue.message))
        }
        do { spec = try spec.loadingSetFiles(baseDirectory: manifestDirectory.isEmpty ? "." : manifestDirectory) } catch {
            problems.append(ManifestError(location: locator.location(dotted: error.path), path: error.path, message: error.message))
        }
        guard problems.isEmpty else { return nil }
        let ruleset = FirewallCompiler.compile(spec)
        do {
            try RulesetCheck.check(ruleset)
        } catch {
            let explained = ruleset.explain(error)
            for d in explained.diagnostics.isEmpty ? [NftDiagnostic(line: nil, columns: nil, message: explained.output, text: nil, origin: nil)] : explained.diagnostics {
                let origin = d.origin ?? "firewall"
                problems.append(ManifestError(location: locator.location(dotted: origin), path: origin,
                                              message: "nftables rejects the compiled rule: \(d.message)" + (d.text.map { " in `\($0.trimmingCharacters(in: .whitespaces))`" } ?? "")))
            }
            return nil
        }
        return CompiledFirewall(spec: spec, ruleset: ruleset, modules: FirewallCompiler.requiredModules(spec, ruleset: ruleset.text))
    }

    /// The firewall as written, with the router's masquerade interfaces folded in; a router that masquerades
    /// without a firewall section gets an open one (every zone pair accepted, like a plain Linux router with
    /// forwarding on) whose only job is the NAT.
    static func effectiveSpec(_ manifest: ApplianceManifest, interfaces: [InterfaceName], locator: Locator,
                              problems: inout [ManifestError]) -> FirewallSpec? {
        let masquerade = manifest.router?.masquerade ?? []
        if var spec = manifest.firewall {
            for (i, name) in masquerade.enumerated() {
                guard let zone = spec.zones.first(where: { $0.interfaces.contains { $0.value == name } }) else {
                    problems.append(locator.error([AnyCodingKey(stringValue: "router"), AnyCodingKey(stringValue: "masquerade"), AnyCodingKey(intValue: i)],
                                                  "masquerade interface '\(name)' is in no firewall zone"))
                    continue
                }
                if !spec.masquerade.contains(zone.name) { spec.masquerade.append(zone.name) }
            }
            // The VPN's UDP port is open to the box from every zone, after the manifest's own rules (so a rule
            // written there can still restrict it). Traffic from the tunnel is filtered by the zone its
            // interface is in, like any other interface's.
            if let port = manifest.vpn?.listenPort, let p = UInt16(exactly: port), let range = try? PortRange(p, p) {
                for zone in spec.zones {
                    spec.rules.append(Rule(from: zone.name, to: "self", proto: [.udp], dport: .ports([range]), action: .accept,
                                           comment: "vpn listen port"))
                }
            }
            return spec
        }
        guard !masquerade.isEmpty else { return nil }
        let uplinks = interfaces.filter { masquerade.contains($0.value) }
        let inside = interfaces.filter { !masquerade.contains($0.value) }
        var zones = [Zone(name: "uplink", interfaces: uplinks)]
        if !inside.isEmpty { zones.append(Zone(name: "inside", interfaces: inside)) }
        let names = zones.map(\.name)
        var policies: [Policy] = []
        for from in names { for to in names + ["self"] where from != to { policies.append(Policy(from: from, to: to, action: .accept)) } }
        return FirewallSpec(zones: zones, policies: policies, masquerade: ["uplink"], defaults: Defaults(antiSpoofing: false))
    }
}

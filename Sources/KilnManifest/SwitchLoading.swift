import KilnConfig
import KilnSwitch

/// Checks the `switch:` section against the rest of the manifest: NIC ports name NICs the switch may own, the TAP
/// port gets an interface name of its own, and the section's own rules (VLAN ranges, trunk lists, mirrors, the
/// collector) are reported at the line of the setting they concern.
enum SwitchLoading {
    /// Kernel modules the switch needs: packet sockets (a name the kernel has built in is skipped by the module
    /// closure, so this costs nothing where `af_packet` is not a module). The TAP port's `tun` comes with `tuntap`.
    static let modules = ["af_packet"]

    /// Returns the problems found; `claim` (which records its own problems) reserves the TAP port's name.
    static func check(_ sw: SwitchSpec, manifest: ApplianceManifest, locator: Locator,
                      claim: (String, [String]) -> InterfaceName?, tuntap: inout [GuestTunTap]) -> [ManifestError] {
        var problems: [ManifestError] = []
        func fail(_ keys: [String], _ message: String) {
            problems.append(locator.error(keys.map(ManifestLoader.key), message))
        }
        let nics = manifest.interfaces?.entries ?? []
        let bridged = Set((manifest.bridges?.entries ?? []).flatMap(\.value.members))
        for (i, port) in sw.ports.enumerated() {
            let keys = ["switch", "ports", "\(i)"]
            if port.type == .tap {
                guard let name = claim(port.name, keys + ["name"]) else { continue }
                tuntap.append(GuestTunTap(name: name, mode: .tap, addresses: port.addresses ?? [], service: "switch"))
                continue
            }
            guard let nic = nics.first(where: { $0.key == port.name })?.value else {
                fail(keys + ["name"], "switch port '\(port.name)' is not a NIC under interfaces"
                     + ManifestLoader.hint(port.name, nics.map(\.key)) + "; an internal port needs type: tap")
                continue
            }
            if nic.vlans != nil {
                fail(keys + ["name"], "switch port '\(port.name)' also has VLAN subinterfaces; the switch owns its frames (put the box on the switch with a tap port)")
            }
            if !(nic.addresses ?? []).isEmpty {
                fail(keys + ["name"], "switch port '\(port.name)' also has addresses; the switch owns its frames (put the box on the switch with a tap port)")
            }
            if bridged.contains(port.name) {
                fail(keys + ["name"], "switch port '\(port.name)' is also a bridge member")
            }
        }
        do {
            _ = try sw.compile()
        } catch {
            // The section's own checks report `switch.ports[1].vlan: message`.
            let text = error.message
            if let split = text.range(of: ": "), text.hasPrefix("switch") {
                let path = String(text[..<split.lowerBound])
                problems.append(ManifestError(location: locator.location(dotted: path), path: path,
                                              message: String(text[split.upperBound...])))
            } else {
                fail(["switch"], text)
            }
        }
        return problems
    }
}

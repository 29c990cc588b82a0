import Glibc
import KilnConfig
import KilnNetlink
import KilnSystem

/// Links, names, addresses, VLANs, bridges, routes and sysctls, spoken over rtnetlink: no `ip` binary in the image.
enum Network {
    struct NetworkError: Error, CustomStringConvertible {
        var description: String
    }

    static func session() throws -> NetlinkSession { NetlinkSession(socket: try RouteNetlinkSocket()) }

    /// Names each NIC from the manifest (by MAC, else by position in PCI order), sets its MTU and brings it up.
    static func links(_ config: GuestConfig) throws -> [(String, JSONValue)] {
        let nl = try session()
        let lo = try nl.link(named: "lo")
        try nl.setUp(index: lo.index)

        let nics = try nl.links().filter { $0.kind == nil && $0.name != "lo" && $0.address.count == 6 }
        let ordered = nics.sorted { pciAddress(of: $0.name) < pciAddress(of: $1.name) }
        var claimed: [Int32: InterfaceName] = [:]
        for interface in config.interfaces {
            var match: Link?
            if let mac = interface.mac {
                match = nics.first { $0.address == mac.bytes }
            } else if let i = interface.pciIndex, i < ordered.count {
                match = ordered[i]
            }
            guard let link = match, claimed[link.index] == nil else {
                let found = ordered.map { "\($0.name) \($0.addressText) \(pciAddress(of: $0.name))" }.joined(separator: ", ")
                let by = interface.mac.map { "MAC \($0)" } ?? "PCI position \(interface.pciIndex ?? -1)"
                throw NetworkError(description: "no NIC with \(by) for interface '\(interface.name)' (found: \(found.isEmpty ? "none" : found))")
            }
            claimed[link.index] = interface.name
        }
        // Two passes, so a target name that another NIC still holds (eth1 ↔ eth0) never clashes.
        for (index, _) in claimed where try nl.link(index: index).name != claimed[index]?.value {
            try nl.rename(index: index, to: "kiln\(index)")
        }
        for interface in config.interfaces {
            guard let (index, _) = claimed.first(where: { $0.value == interface.name }) else { continue }
            if try nl.link(index: index).name != interface.name.value { try nl.rename(index: index, to: interface.name.value) }
            if let mtu = interface.mtu { try nl.setMTU(index: index, mtu: UInt32(mtu)) }
            try nl.setUp(index: index)
        }
        return [("nics", .int(Int64(nics.count))), ("named", .int(Int64(claimed.count)))]
    }

    /// VLANs, bridges, addresses, sysctls, then routes (which need the addresses in place).
    static func configure(_ config: GuestConfig) throws -> [(String, JSONValue)] {
        let nl = try session()
        for s in config.sysctl { try Kernel.sysctl(set: s.key, s.value) }
        for vlan in config.vlans {
            let parent = try nl.link(named: vlan.parent.value)
            try nl.addVLAN(parent: parent.index, id: UInt16(vlan.id), name: vlan.name.value)
            try nl.setUp(index: try nl.link(named: vlan.name.value).index)
        }
        for bridge in config.bridges {
            try nl.addBridge(name: bridge.name.value)
            let b = try nl.link(named: bridge.name.value)
            for member in bridge.members { try nl.setMaster(index: try nl.link(named: member.value).index, master: b.index) }
            try nl.setUp(index: b.index)
        }
        var count = 0
        let addressed: [(InterfaceName, [CIDR])] = config.interfaces.map { ($0.name, $0.addresses) }
            + config.vlans.map { ($0.name, $0.addresses) } + config.bridges.map { ($0.name, $0.addresses) }
        for (name, addresses) in addressed {
            let index = try nl.link(named: name.value).index
            for a in addresses { try nl.addAddress(index: index, bytes: a.address.bytes, prefix: UInt8(a.prefixLength)); count += 1 }
        }
        for route in config.routes {
            let oif = try route.dev.map { try nl.link(named: $0.value).index }
            try nl.addRoute(destination: route.to.network.bytes, prefix: UInt8(route.to.prefixLength), gateway: route.via?.bytes,
                            oif: oif, metric: route.metric.map { UInt32($0) })
        }
        return [("addresses", .int(Int64(count))), ("routes", .int(Int64(config.routes.count))), ("vlans", .int(Int64(config.vlans.count)))]
    }

    /// TUN/TAP devices, persistent so the services that use them attach by name, with their addresses and
    /// routes. The runtime keeps open the ones no service claims; a claimed one (a VPN's) is released so its
    /// service can attach, and it outlives that service's restarts with its addresses and routes.
    static func tuntap(_ config: GuestConfig) throws -> [TunDevice] {
        guard !config.tuntap.isEmpty else { return [] }
        let nl = try session()
        return try config.tuntap.compactMap { t in
            let device = try TunDevice.open(name: t.name.value, tap: t.mode == .tap, persistent: true)
            let index = try nl.link(named: t.name.value).index
            for a in t.addresses { try nl.addAddress(index: index, bytes: a.address.bytes, prefix: UInt8(a.prefixLength)) }
            if let mtu = t.mtu { try nl.setMTU(index: index, mtu: UInt32(mtu)) }
            try nl.setUp(index: index)
            for r in t.routes ?? [] {
                try nl.addRoute(destination: r.network.bytes, prefix: UInt8(r.prefixLength), gateway: nil, oif: index, metric: nil)
            }
            return t.service == nil ? device : nil
        }
    }

    /// The PCI address a NIC sits behind (`0000:00:03.0`), from sysfs; NICs without one sort last.
    static func pciAddress(of name: String) -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX))
        guard realpath("/sys/class/net/\(name)/device", &buffer) != nil else { return "~" + name }
        let path = String(cString: buffer)
        return path.split(separator: "/").last { $0.contains(":") && $0.contains(".") }.map(String.init) ?? "~" + name
    }
}


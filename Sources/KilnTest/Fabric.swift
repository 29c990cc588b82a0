import Foundation
import KilnConfig

/// The test network on the build host: one namespace per test host, and a "fabric" namespace holding the
/// VMs' TAPs and the bridges that join them. Nothing is created in the host's own namespace, so deleting the
/// run's namespaces removes every link, bridge and TAP it made.
///
/// Namespaces are named `kiln<pid>-<name>`; a later run removes those whose pid is gone (a killed run).
public final class Fabric {
    public let prefix: String
    public var fabricNamespace: String { prefix + "fab" }
    private(set) var namespaces: [String] = []
    /// TAP device (in the fabric namespace) for each VM NIC, by `vm.nic`.
    public private(set) var taps: [String: String] = [:]
    /// Interfaces created inside each host namespace, in link order (`eth0`, `eth1`, …).
    public private(set) var hostInterfaces: [String: [String]] = [:]
    /// The userspace 802.1Q switch of each VM NIC that has `vlan:` links, by `vm.nic` (see `VLANTrunk`).
    public private(set) var trunks: [String: VLANTrunk] = [:]
    private let trunkLock = NSLock()

    public init(pid: Int32 = getpid()) { prefix = "kiln\(pid)-" }

    public func namespace(ofHost host: String) -> String { prefix + host }

    /// Removes namespaces left by Kiln test runs whose process no longer exists.
    public static func removeStale() {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/run/netns") else { return }
        for name in names where name.hasPrefix("kiln") {
            let digits = name.dropFirst(4).prefix { $0.isNumber }
            guard let pid = Int32(digits), !digits.isEmpty, kill(pid, 0) != 0, errno == ESRCH else { continue }
            _ = try? HostCommand.run(["ip", "netns", "del", name])
        }
    }

    /// Builds the network for a topology. `nics` lists each VM's interface names in NIC order.
    ///
    /// A VM NIC with `vlan:` links keeps its TAP out of the bridge: a `VLANTrunk` joins the TAP (trunk), the
    /// fabric end of each VLAN link (access port) and a veth pair `<tap>u`–`<tap>b` into the bridge (untagged traffic).
    public func setUp(_ topology: Topology, nics: [String: [String]]) throws {
        var trunkPorts: [String: [VLANTrunk.Port]] = [:]
        for link in topology.links where link.vlan != nil {
            let aIsNIC = link.a.contains("."), bIsNIC = link.b.contains(".")
            guard aIsNIC != bIsNIC else {
                throw TestError.topology("link \(link.a) ↔ \(link.b): 'vlan' makes a host an access port of a VM NIC, so one end must be a host and the other vm.nic")
            }
            trunkPorts[aIsNIC ? link.a : link.b] = []
        }
        try addNamespace(fabricNamespace)
        for host in topology.hosts?.keys ?? [] { try addNamespace(namespace(ofHost: host)) }

        // A bridge per group of VM NICs joined by VM-to-VM links.
        var group: [String: String] = [:]
        func find(_ x: String) -> String {
            var r = x
            while let p = group[r], p != r { r = p }
            return r
        }
        for (vmIndex, (vm, _)) in topology.vms.entries.enumerated() {
            for (nicIndex, nic) in (nics[vm] ?? []).enumerated() {
                let tap = "t\(vmIndex)n\(nicIndex)"
                try ip(fabricNamespace, "tuntap", "add", "dev", tap, "mode", "tap")
                if trunkPorts["\(vm).\(nic)"] != nil {
                    try relayOwned(tap)
                    try ip(fabricNamespace, "link", "add", tap + "u", "type", "veth", "peer", "name", tap + "b")
                    try relayOwned(tap + "u")
                    try ip(fabricNamespace, "link", "set", tap + "b", "up")
                    trunkPorts["\(vm).\(nic)"] = [.init(interface: tap, mode: .trunk)]
                } else {
                    try ip(fabricNamespace, "link", "set", tap, "up")
                }
                taps["\(vm).\(nic)"] = tap
                group["\(vm).\(nic)"] = "\(vm).\(nic)"
            }
        }
        for link in topology.links where link.a.contains(".") && link.b.contains(".") {
            group[find(link.a)] = find(link.b)
        }
        var bridges: [String: String] = [:]
        for end in taps.keys.sorted() {
            let root = find(end)
            if bridges[root] == nil {
                let name = "br\(bridges.count)"
                try ip(fabricNamespace, "link", "add", name, "type", "bridge", "forward_delay", "0")
                try ip(fabricNamespace, "link", "set", name, "up")
                bridges[root] = name
            }
            guard let tap = taps[end], let bridge = bridges[root] else { continue }
            // A trunk's untagged side joins the bridge; tags pass too when other VM NICs share it (a VM-to-VM trunk).
            let port = trunkPorts[end] == nil ? tap : tap + "b"
            try ip(fabricNamespace, "link", "set", port, "master", bridge)
            if trunkPorts[end] != nil {
                let shared = taps.keys.contains { $0 != end && find($0) == root }
                trunkPorts[end, default: []].append(.init(interface: tap + "u", mode: shared ? .trunk : .native))
            }
        }

        var veths = 0
        func hostEnd(_ host: String) -> String {
            let name = "eth\(hostInterfaces[host, default: []].count)"
            hostInterfaces[host, default: []].append(name)
            return name
        }
        for link in topology.links {
            let aIsNIC = link.a.contains("."), bIsNIC = link.b.contains(".")
            if aIsNIC && bIsNIC { continue }
            veths += 1
            let tmpA = "kv\(veths)a", tmpB = "kv\(veths)b"
            if !aIsNIC && !bIsNIC {
                try ip(namespace(ofHost: link.a), "link", "add", tmpA, "type", "veth", "peer", "name", tmpB, "netns", namespace(ofHost: link.b))
                try rename(namespace(ofHost: link.a), tmpA, hostEnd(link.a))
                try rename(namespace(ofHost: link.b), tmpB, hostEnd(link.b))
                continue
            }
            let (host, nic) = aIsNIC ? (link.b, link.a) : (link.a, link.b)
            guard let bridge = bridges[find(nic)] else { throw TestError.topology("no NIC '\(nic)' (the VM's interfaces are: \(taps.keys.sorted().joined(separator: ", ")))") }
            try ip(fabricNamespace, "link", "add", tmpA, "type", "veth", "peer", "name", tmpB, "netns", namespace(ofHost: host))
            if let vlan = link.vlan {
                try relayOwned(tmpA)
                try ip(fabricNamespace, "link", "set", tmpA, "up")
                trunkPorts[nic, default: []].append(.init(interface: tmpA, mode: .access(UInt16(vlan))))
            } else {
                try ip(fabricNamespace, "link", "set", tmpA, "master", bridge)
                try ip(fabricNamespace, "link", "set", tmpA, "up")
            }
            try rename(namespace(ofHost: host), tmpB, hostEnd(host))
        }
        for (nic, ports) in trunkPorts.sorted(by: { $0.key < $1.key }) {
            let trunk = VLANTrunk(namespace: fabricNamespace, ports: ports)
            trunkLock.withLock { trunks[nic] = trunk }
            try trunk.start()
        }

        for (host, spec) in topology.hosts?.entries ?? [] {
            let ns = namespace(ofHost: host)
            guard let first = hostInterfaces[host]?.first else { continue }
            for a in spec.addresses ?? [] {
                try ip(ns, a.address.isV4 ? "-4" : "-6", "addr", "add", a.description, "dev", first, "nodad")
            }
            for r in spec.routes ?? [] {
                var args = ["route", "add", r.to.cidr.description]
                if let via = r.via { args += ["via", via.description] }
                args += ["dev", r.dev ?? first]
                if let m = r.metric { args += ["metric", String(m)] }
                try ip(ns, args)
            }
        }
    }

    private func addNamespace(_ name: String) throws {
        try HostCommand.check(["ip", "netns", "add", name])
        namespaces.append(name)
        try ip(name, "link", "set", "lo", "up")
    }

    /// An interface only the VLAN relay reads: up, without an IPv6 link-local address, so the fabric
    /// namespace's own stack sends nothing through it.
    private func relayOwned(_ name: String) throws {
        try ip(fabricNamespace, "link", "set", name, "addrgenmode", "none")
        try ip(fabricNamespace, "link", "set", name, "up")
    }

    private func rename(_ ns: String, _ from: String, _ to: String) throws {
        try ip(ns, "link", "set", from, "name", to)
        try ip(ns, "link", "set", to, "up")
    }

    private func ip(_ ns: String, _ args: String...) throws { try ip(ns, args) }
    private func ip(_ ns: String, _ args: [String]) throws { try HostCommand.check(["ip", "-n", ns] + args) }

    /// Stops the VLAN relays (their threads exit), then deletes every namespace this run made; their links,
    /// bridges and TAPs go with them.
    public func tearDown() {
        let stopping = trunkLock.withLock { () -> [VLANTrunk] in
            defer { trunks = [:] }
            return Array(trunks.values)
        }
        for trunk in stopping { trunk.stop() }
        for ns in namespaces.reversed() { _ = try? HostCommand.run(["ip", "netns", "del", ns]) }
        namespaces = []
    }

    deinit { tearDown() }
}

/// Why a test run could not proceed.
public enum TestError: Error, CustomStringConvertible {
    case topology(String)
    case unsupported(String)
    case environment(String)
    public var description: String {
        switch self {
        case let .topology(m): return "topology: \(m)"
        case let .unsupported(m): return "unsupported: \(m)"
        case let .environment(m): return "environment: \(m)"
        }
    }
}

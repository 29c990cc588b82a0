import Foundation
import KilnConfig
import KilnManifest

/// `Appliances/<name>.topology.yaml`: VMs, test hosts (network namespaces on the build host), the links
/// between them, and the checks to run across the whole.
public struct Topology: Decodable, Sendable {
    public var apiVersion: String
    public var name: String
    public var vms: OrderedMap<VMSpec>
    public var hosts: OrderedMap<HostSpec>?
    public var links: [LinkSpec]
    public var checks: [CheckSpec]

    /// An appliance under test: a manifest to build, or an already built output directory.
    public struct VMSpec: Decodable, Sendable {
        public var appliance: String?
        public var image: String?
        public var memory: Int?
        /// vCPUs (default: 2 under KVM, 1 under TCG; see `Accelerator.defaultCPUs`).
        public var cpus: Int?
        /// The kiln-init phase this VM's boot must fail in (e.g. `firewall`, to prove a box whose ruleset does
        /// not load stays closed). Checks then run against the failed box; reaching READY fails the run.
        public var expectFailure: String?
        /// Run as a Xen guest of another VM of the topology (a Kiln Xen host) instead of under QEMU.
        public var xen: XenPlacement?

        enum CodingKeys: String, CodingKey { case appliance, image, memory, cpus, expectFailure = "expect-failure", xen }
    }

    /// Where a Xen guest runs and how the harness deploys it there: `kiln deploy xen` from a test host linked to
    /// the Xen host's management NIC. The guest's NICs are the bridges the deploy profile names in dom0, so a
    /// link to `guest.nic` is a link to the Xen host NIC in that bridge.
    public struct XenPlacement: Decodable, Sendable {
        /// The Xen host VM.
        public var host: String
        /// The deploy profile (relative to the topology): memory, vCPUs, each NIC's bridge in dom0.
        public var profile: String
        /// dom0 as `kiln deploy xen --connect` takes it, e.g. ssh://root@192.0.2.1.
        public var connect: String
        /// The test host the deploy runs from.
        public var via: String
        /// The SSH private key (relative to the topology).
        public var identity: String?
    }

    /// A test host: a network namespace with addresses, routes and optional background commands (servers).
    public struct HostSpec: Decodable, Sendable {
        public var addresses: [CIDR]?
        public var routes: [RouteSpec]?
        /// Shell commands started in the background once the topology is up, stopped at teardown.
        public var run: [String]?
    }

    /// Two ends: `host`, or `vm.nic`. `vlan` makes the host end an access port in that VLAN of a trunk.
    public struct LinkSpec: Decodable, Sendable {
        public var a: String
        public var b: String
        public var vlan: Int?

        enum CodingKeys: String, CodingKey { case a, b, vlan }

        public init(from decoder: Decoder) throws {
            // `[a, b]` or `[a, b, {vlan: 10}]` or `{a:, b:, vlan:}`.
            if var list = try? decoder.unkeyedContainer() {
                a = try list.decode(String.self)
                b = try list.decode(String.self)
                if !list.isAtEnd {
                    let options = try list.decode(LinkOptions.self)
                    vlan = options.vlan
                }
                if !list.isAtEnd { throw DecodingError.dataCorruptedError(in: list, debugDescription: "a link has two ends and optional {vlan: N}") }
            } else {
                let c = try decoder.container(keyedBy: CodingKeys.self)
                a = try c.decode(String.self, forKey: .a)
                b = try c.decode(String.self, forKey: .b)
                vlan = try c.decodeIfPresent(Int.self, forKey: .vlan)
            }
        }
    }

    struct LinkOptions: Decodable { var vlan: Int? }

    /// One check, run on a host (`on: client`) or against a VM's console (`on: r1`, `event: ready`,
    /// `console: status` with `output:` a text the console must print in answer, or `line:` a line the VM
    /// prints by itself).
    public struct CheckSpec: Decodable, Sendable {
        public var name: String?
        public var on: String
        public var ping: IPAddress?
        public var tcp: String?
        public var udp: String?
        public var run: String?
        public var event: String?
        /// A line typed on the VM's serial console (a kiln-init command such as `status`). With `event`, the check
        /// waits (up to `timeout`, retyping the line every second) for that event, with `output` in its `key=value`
        /// fields; without, for a console line after it that contains `output`.
        public var console: String?
        /// A regular expression a line the VM prints by itself on its console must match (a service's report,
        /// e.g. a tunnel's second handshake): the check waits up to `timeout` (default 3 s, scaled) for such a
        /// line printed at any time since boot (within the console tail Kiln keeps). Nothing is typed.
        public var line: String?
        public var expect: Expectation?
        /// For `run` and `console`: a substring the output must contain; for `console` with `event`: text in the event's fields.
        public var output: String?
        public var timeout: Double?
    }

    public enum Expectation: String, Decodable, Sendable {
        case ok, fail, refused, timeout
    }
}

/// Loads and validates a topology; paths in it are relative to the file.
public enum TopologyLoader {
    public static func load(_ path: String) throws -> (Topology, Locator) {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw ManifestError(location: .init(file: path, line: 1, column: 1), path: "<root>", message: "cannot read the file")
        }
        let (topology, locator) = try ManifestDecoder(file: path).decodeLocated(Topology.self, from: text)
        var problems: [ManifestError] = []
        func key(_ s: String) -> CodingKey { Int(s).map { AnyCodingKey(intValue: $0) } ?? AnyCodingKey(stringValue: s) }
        func fail(_ keys: [String], _ message: String) { problems.append(locator.error(keys.map(key), message)) }
        let vmNames = Set(topology.vms.keys), hostNames = Set(topology.hosts?.keys ?? [])
        if topology.apiVersion != ManifestLoader.apiVersion { fail(["apiVersion"], "unsupported apiVersion '\(topology.apiVersion)'") }
        for (name, vm) in topology.vms.entries where (vm.appliance == nil) == (vm.image == nil) {
            fail(["vms", name], "a VM needs exactly one of 'appliance' (a manifest) or 'image' (a built output directory)")
        }
        for (name, vm) in topology.vms.entries {
            if let phase = vm.expectFailure, !isValidPhaseName(phase) { fail(["vms", name, "expect-failure"], "'\(phase)' is not a kiln-init phase name") }
            if let cpus = vm.cpus, !(1...16).contains(cpus) { fail(["vms", name, "cpus"], "\(cpus) vCPUs is outside 1…16") }
            if let memory = vm.memory, !(64...16384).contains(memory) { fail(["vms", name, "memory"], "\(memory) MiB is outside 64…16384") }
        }
        let xenGuests = Set(topology.vms.entries.filter { $0.value.xen != nil }.map(\.key))
        for (name, vm) in topology.vms.entries {
            guard let xen = vm.xen else { continue }
            if !vmNames.contains(xen.host) || xenGuests.contains(xen.host) || xen.host == name {
                fail(["vms", name, "xen", "host"], "'\(xen.host)' is not another VM of the topology running under QEMU (a Kiln Xen host)")
            }
            if !hostNames.contains(xen.via) { fail(["vms", name, "xen", "via"], "'\(xen.via)' is not a host of the topology") }
            if vm.expectFailure != nil || vm.cpus != nil || vm.memory != nil {
                fail(["vms", name], "a Xen guest takes its memory and vCPUs from its deploy profile, and must reach READY")
            }
        }
        for (i, check) in topology.checks.enumerated() where xenGuests.contains(check.on) && check.console != nil {
            fail(["checks", "\(i)", "console"], "'\(check.on)' is a Xen guest: its console is read from dom0's log, nothing can be typed on it")
        }
        for name in hostNames where vmNames.contains(name) { fail(["hosts", name], "'\(name)' is both a VM and a host") }
        for name in hostNames.union(vmNames) where name.count > 8 || !name.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber) }) {
            fail([hostNames.contains(name) ? "hosts" : "vms", name], "'\(name)' must be 1-8 characters of a-z and 0-9 (it names namespaces and TAPs)")
        }
        for (i, link) in topology.links.enumerated() {
            for end in [link.a, link.b] {
                let parts = end.split(separator: ".", maxSplits: 1).map(String.init)
                if parts.count == 2 ? !vmNames.contains(parts[0]) : !hostNames.contains(end) {
                    let hint = suggestion(for: end, among: hostNames.union(vmNames)).map { " (did you mean '\($0)'?)" } ?? ""
                    fail(["links", "\(i)"], "link end '\(end)' is neither a host nor a VM NIC (vm.nic)\(hint)")
                }
            }
            if let v = link.vlan, !(1...4094).contains(v) { fail(["links", "\(i)"], "VLAN \(v) is outside 1-4094") }
        }
        for (i, check) in topology.checks.enumerated() {
            let onConsole = check.event != nil || check.console != nil
            let onVM = onConsole || check.line != nil
            let kinds = [check.ping != nil, check.tcp != nil, check.udp != nil, check.run != nil, onConsole, check.line != nil].filter { $0 }.count
            if kinds != 1 { fail(["checks", "\(i)"], "a check needs exactly one of ping, tcp, udp, run, event, console (with an optional event) or line") }
            if !hostNames.contains(check.on) && !vmNames.contains(check.on) { fail(["checks", "\(i)", "on"], "'\(check.on)' is not a host or VM") }
            if onVM && !vmNames.contains(check.on) { fail(["checks", "\(i)", "on"], "event, console and line checks run on a VM") }
            if let line = check.line {
                do { _ = try Regex(line) } catch { fail(["checks", "\(i)", "line"], "'\(line)' is not a regular expression: \(error)") }
            }
            if !onVM && !hostNames.contains(check.on) { fail(["checks", "\(i)", "on"], "network checks run on a host") }
            for target in [check.tcp, check.udp].compactMap({ $0 }) where Endpoint(target) == nil {
                fail(["checks", "\(i)"], "'\(target)' is not address:port")
            }
        }
        guard problems.isEmpty else { throw ManifestErrors(errors: problems) }
        return (topology, locator)
    }
}

/// kiln-init phase names are lower-case words joined by '-' (`firewall`, `firewall-bootstrap`).
func isValidPhaseName(_ name: String) -> Bool {
    !name.isEmpty && name.allSatisfy { ($0.isASCII && $0.isLowercase) || $0 == "-" }
}

/// `10.0.0.1:80` or `[2001:db8::1]:80`.
public struct Endpoint: Sendable, Equatable {
    public var address: IPAddress
    public var port: UInt16
    public init?(_ text: String) {
        let host: Substring, port: Substring
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            host = text[text.index(after: text.startIndex)..<close]
            port = text[text.index(after: close)...].dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            host = text[..<colon]; port = text[text.index(after: colon)...]
        }
        guard let a = try? IPAddress(String(host)), let p = UInt16(port), p > 0 else { return nil }
        address = a; self.port = p
    }
}

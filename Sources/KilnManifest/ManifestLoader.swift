import Foundation
import KilnConfig
import KilnDHCP
import KilnFirewall
import KilnSwitch
import KilnWANOpt

/// Reads an appliance manifest and its base image, validates them together, and returns an `ApplianceSpec`.
public enum ManifestLoader {
    public static let apiVersion = "kiln/v1"

    /// Loads `path`; the base is looked up as `Images/<base>.yaml` beside the manifest's folder, its parent,
    /// or the current directory. Throws `ManifestErrors` listing every problem found. `files:` sources must lie in
    /// the manifest's directory tree unless `allowHostFiles`.
    /// `environment` holds the variables `{ env: NAME }` secrets are read from (the process's by default).
    public static func load(_ path: String, allowHostFiles: Bool = false,
                            environment: [String: String] = ProcessInfo.processInfo.environment) throws -> ApplianceSpec {
        let text = try readText(path)
        var (manifest, locator) = try ManifestDecoder(file: path).decodeLocated(ApplianceManifest.self, from: text)
        var problems: [ManifestError] = []
        var warnings: [ManifestError] = []
        func fail(_ keys: [String], _ message: String) { problems.append(locator.error(keys.map(key), message)) }
        func warn(_ keys: [String], _ message: String) {
            var w = locator.error(keys.map(key), message)
            w.isWarning = true
            warnings.append(w)
        }
        // A wg-quick file becomes the vpn: section before anything reads it (the firewall opens its port).
        if let reference = manifest.vpn?.wgQuick {
            manifest.vpn = WGQuickImport.section(reference, interface: manifest.vpn?.interface,
                                                 manifestDirectory: URL(fileURLWithPath: path).deletingLastPathComponent().path,
                                                 problems: &problems) { location, message in
                var w = ManifestError(location: location, path: "vpn.wgQuick", message: message)
                w.isWarning = true
                warnings.append(w)
            }
            if manifest.vpn == nil { throw ManifestErrors(errors: problems) }
        }

        if manifest.apiVersion != apiVersion { fail(["apiVersion"], "unsupported apiVersion '\(manifest.apiVersion)'; expected '\(apiVersion)'") }
        if !isValidName(manifest.name) { fail(["name"], "name '\(manifest.name)' must be 1-63 characters of a-z, 0-9 and '-', starting with a letter") }

        let searched = baseCandidates(manifest.base, near: path)
        guard let basePath = searched.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
            fail(["base"], isBasePath(manifest.base) ? "no base image at '\(searched.first ?? manifest.base)'"
                 : "no base image 'Images/\(manifest.base).yaml' found; looked in: " + searched.map { ($0 as NSString).deletingLastPathComponent }.joined(separator: ", "))
            throw ManifestErrors(errors: problems)
        }
        let (base, baseLocator) = try ManifestDecoder(file: basePath).decodeLocated(BaseImage.self, from: try readText(basePath))
        if base.apiVersion != apiVersion {
            problems.append(baseLocator.error([key("apiVersion")], "unsupported apiVersion '\(base.apiVersion)'; expected '\(apiVersion)'"))
        }
        if base.kernel.moduleFtrace == .strip && base.kernel.moduleSignatures != .strip {
            problems.append(baseLocator.error([key("kernel"), key("moduleFtrace")],
                "moduleFtrace: strip edits every module, which breaks a signature kept on it (the kernel refuses a module whose "
                + "signature does not match); set kernel.moduleSignatures: strip, or moduleFtrace: keep"))
        }

        let manifestDir = (path as NSString).deletingLastPathComponent
        var interfaces: [GuestInterface] = []
        var vlans: [GuestVLAN] = []
        var names: [String: [String]] = [:]
        var macs: [MACAddress: String] = [:]
        func claim(_ name: String, _ keys: [String]) -> InterfaceName? {
            do {
                let n = try InterfaceName(name)
                if let prior = names[name] { fail(keys, "interface name '\(name)' is already used by \(prior.joined(separator: "."))"); return nil }
                names[name] = keys
                return n
            } catch { fail(keys, error.message); return nil }
        }
        for (index, (name, spec)) in (manifest.interfaces?.entries ?? []).enumerated() {
            let keys = ["interfaces", name]
            guard let ifname = claim(name, keys) else { continue }
            if let mac = spec.mac {
                if let other = macs[mac] { fail(keys + ["mac"], "MAC \(mac) is also used by interface '\(other)'") }
                macs[mac] = name
            }
            if let mtu = spec.mtu, !(68...65535).contains(mtu) { fail(keys + ["mtu"], "MTU \(mtu) is outside 68-65535") }
            if let pci = spec.pci, pci < 0 { fail(keys + ["pci"], "PCI index must be 0 or more") }
            interfaces.append(GuestInterface(name: ifname, mac: spec.mac, pciIndex: spec.mac == nil ? (spec.pci ?? index) : spec.pci,
                                             addresses: spec.addresses ?? [], mtu: spec.mtu))
            for (vid, vlan) in spec.vlans?.entries ?? [] {
                let vkeys = keys + ["vlans", vid]
                guard let id = Int(vid), (1...4094).contains(id) else { fail(vkeys, "VLAN id '\(vid)' must be a number from 1 to 4094"); continue }
                guard let vname = claim("\(name).\(id)", vkeys) else { continue }
                vlans.append(GuestVLAN(name: vname, parent: ifname, id: id, addresses: vlan.addresses ?? []))
            }
        }

        // Each interface is a virtio NIC in its own PCI slot; more than fit would fail only at boot.
        let withDisk = (base.formats ?? []).contains { $0 != .kernelInitrd }
        let capacity = PCISlots.nicCapacity(withDisk: withDisk)
        if let name = manifest.interfaces?.entries.dropFirst(capacity).first?.key {
            fail(["interfaces", name], "\(manifest.interfaces?.entries.count ?? 0) interfaces do not fit: a VM has PCI slots for \(capacity) NICs"
                 + (withDisk ? " beside its boot disk (the base builds disk images)" : "") + "; this is number \(capacity + 1)")
        }

        var bridges: [GuestBridge] = []
        for (name, spec) in manifest.bridges?.entries ?? [] {
            let keys = ["bridges", name]
            guard let bname = claim(name, keys) else { continue }
            var members: [InterfaceName] = []
            for (i, m) in spec.members.enumerated() {
                guard let n = try? InterfaceName(m), names[m] != nil, m != name else {
                    fail(keys + ["members", "\(i)"], "bridge member '\(m)' is not an interface of this appliance" + hint(m, Array(names.keys)))
                    continue
                }
                members.append(n)
            }
            bridges.append(GuestBridge(name: bname, members: members, addresses: spec.addresses ?? []))
        }

        var tuntap: [GuestTunTap] = []
        for (name, spec) in manifest.tuntap?.entries ?? [] {
            guard let n = claim(name, ["tuntap", name]) else { continue }
            tuntap.append(GuestTunTap(name: n, mode: spec.mode, addresses: spec.addresses ?? []))
        }

        if let sw = manifest.switch {
            let found = SwitchLoading.check(sw, manifest: manifest, locator: locator, claim: claim, tuntap: &tuntap)
            problems += found
        }
        var vpn: VPNRole?
        if let section = manifest.vpn {
            vpn = VPNLoading.load(section, claim: claim, manifestDirectory: manifestDir, environment: environment,
                                  locator: locator, problems: &problems, warn: warn)
            if let vpn { tuntap.append(vpn.tunnel) }
        }
        let xen = manifest.xen.flatMap { XenLoading.load($0, locator: locator, problems: &problems) }

        var routes: [GuestRoute] = []
        for (i, r) in (manifest.routes ?? []).enumerated() {
            let keys = ["routes", "\(i)"]
            var dev: InterfaceName?
            if let d = r.dev {
                if names[d] == nil { fail(keys + ["dev"], "route device '\(d)' is not an interface of this appliance" + hint(d, Array(names.keys))) }
                dev = try? InterfaceName(d)
            }
            if let via = r.via, via.isV4 != r.to.cidr.address.isV4 { fail(keys + ["via"], "gateway \(via) and destination \(r.to.cidr) are different IP versions") }
            if r.via == nil && dev == nil { fail(keys, "a route needs 'via' (a gateway) or 'dev' (an interface)") }
            if let m = r.metric, m < 0 { fail(keys + ["metric"], "metric must be 0 or more") }
            routes.append(GuestRoute(to: r.to.cidr, via: r.via, dev: dev, metric: r.metric))
        }

        var sysctl: [GuestSysctl] = []
        for (k, v) in manifest.sysctl?.entries ?? [] {
            if k.isEmpty || k.contains("/") || k.hasPrefix(".") || k.contains("..") { fail(["sysctl", k], "'\(k)' is not a sysctl key like net.ipv4.ip_forward") }
            sysctl.append(GuestSysctl(key: k, value: v.text))
        }
        if let router = manifest.router {
            for (i, m) in (router.masquerade ?? []).enumerated() where names[m] == nil {
                fail(["router", "masquerade", "\(i)"], "masquerade interface '\(m)' is not an interface of this appliance" + hint(m, Array(names.keys)))
            }
            if let dhcp = router.dhcp {
                var addresses: [InterfaceName: [CIDR]] = [:]
                for i in interfaces { addresses[i.name] = i.addresses }
                for v in vlans { addresses[v.name] = v.addresses }
                for b in bridges { addresses[b.name] = b.addresses }
                for issue in dhcp.validate(addresses: addresses) {
                    problems.append(ManifestError(location: locator.location(dotted: issue.path), path: issue.path, message: issue.message))
                }
            }
            if router.forwarding ?? true {
                for k in ["net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"] where !sysctl.contains(where: { $0.key == k }) {
                    sysctl.append(GuestSysctl(key: k, value: "1"))
                }
            }
        }

        var services: [GuestService] = []
        for (name, spec) in manifest.services?.entries ?? [] {
            if !isValidName(name) { fail(["services", name], "service name '\(name)' must be a-z, 0-9 and '-'") }
            if spec.run.isEmpty || !(spec.run.first?.hasPrefix("/") ?? false) { fail(["services", name, "run"], "'run' must start with an absolute program path") }
            if vpn != nil && name == "vpn" { fail(["services", name], "the service name 'vpn' is taken by the vpn section's kiln-vpn") }
            services.append(GuestService(name: name, argv: spec.run, env: (spec.env?.entries ?? []).map { "\($0.key)=\($0.value.text)" },
                                         restart: spec.restart ?? .always))
        }

        var files: [ImageFile] = []
        for (i, f) in (manifest.files ?? []).enumerated() {
            let keys = ["files", "\(i)"]
            if let c = FileSources.controlCharacter(in: f.path) {
                fail(keys + ["path"], "file path contains the control character \(FileSources.describe(c)); image paths are printable text"); continue
            }
            guard f.path.hasPrefix("/"), !f.path.split(separator: "/").contains("..") else { fail(keys + ["path"], "file path '\(f.path)' must be absolute without '..'"); continue }
            var mode: UInt32?
            if let m = f.mode {
                guard let parsed = UInt32(m, radix: 8), parsed <= 0o7777 else { fail(keys + ["mode"], "mode '\(m)' must be octal like \"0644\""); continue }
                mode = parsed
            }
            switch (f.content, f.source) {
            case (nil, nil) where f.link != nil:
                guard let link = f.link, !link.isEmpty, !link.contains("\0") else { fail(keys + ["link"], "a link needs a target"); continue }
                files.append(ImageFile(path: f.path, linkTo: link))
            case _ where f.link != nil: fail(keys, "a file needs exactly one of 'content', 'source' or 'link'")
            case let (content?, nil): files.append(ImageFile(path: f.path, mode: mode ?? 0o644, contents: Array(content.utf8)))
            case let (nil, source?):
                do {
                    let read = try FileSources.read(source, manifestDirectory: manifestDir, allowHostFiles: allowHostFiles)
                    files.append(ImageFile(path: f.path, mode: mode ?? read.mode, contents: read.contents))
                } catch { fail(keys + ["source"], error.message) }
            default: fail(keys, "a file needs exactly one of 'content' or 'source'")
            }
        }

        var wanopt: WANOptConfig?
        if let section = manifest.wanopt {
            let names = Set(interfaces.map(\.name.value) + vlans.map(\.name.value) + bridges.map(\.name.value))
            if let compiled = compileWANOpt(section, applianceName: manifest.name, interfaceNames: names,
                                            manifestDirectory: manifestDir, environment: environment, fail: fail, warn: warn) {
                wanopt = compiled.config
                files.append(compiled.key)
            }
            // Fails open by forwarding when the service is down.
            for k in ["net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"] where !sysctl.contains(where: { $0.key == k }) {
                sysctl.append(GuestSysctl(key: k, value: "1"))
            }
        }

        var firewall: CompiledFirewall?
        if problems.isEmpty {
            firewall = FirewallLoading.compile(manifest, interfaces: interfaces.map(\.name) + vlans.map(\.name) + bridges.map(\.name)
                                                   + tuntap.map(\.name), manifestDirectory: manifestDir, locator: locator, problems: &problems)
        }
        guard problems.isEmpty else { throw ManifestErrors(errors: problems.sorted { ($0.location.line, $0.location.column) < ($1.location.line, $1.location.column) }) }
        var modules = base.modules + (manifest.modules ?? []) + (firewall?.modules ?? [])
        if !vlans.isEmpty { modules.append("8021q") }
        if !bridges.isEmpty { modules.append("bridge") }
        if !tuntap.isEmpty { modules.append("tun") }
        if manifest.switch != nil { modules += SwitchLoading.modules }
        // TPROXY and the socket match of the interception table (their dependencies come with the closure).
        if wanopt != nil { modules += ["nft_tproxy", "nft_socket"] }
        if xen != nil { modules += XenHostRole.modules }
        var spec = ApplianceSpec(
            name: manifest.name, hostname: manifest.hostname ?? manifest.name, manifestPath: path, basePath: basePath, base: base,
            interfaces: interfaces, vlans: vlans, bridges: bridges, routes: routes, sysctl: sysctl, tuntap: tuntap,
            services: services, files: files,
            packages: Array(Set(base.packages + (manifest.packages ?? []) + (xen.map { [$0.hypervisorPackage, $0.toolsPackage] } ?? []))).sorted(),
            modules: unique(modules), router: manifest.router, switch: manifest.switch, firewall: firewall, wanopt: wanopt, vpn: vpn)
        spec.programPackages = manifest.packages ?? []
        for (i, name) in base.packages.enumerated() { spec.packageLocations[name] = baseLocator.location([key("packages"), AnyCodingKey(intValue: i)]) }
        spec.packageLocations[base.kernel.package] = baseLocator.location([key("kernel"), key("package")])
        for (i, name) in (manifest.packages ?? []).enumerated() { spec.packageLocations[name] = locator.location([key("packages"), AnyCodingKey(intValue: i)]) }
        spec.xen = xen
        for platform in Platform.allCases {
            let names = base.platformModules?[platform] ?? []
            if !names.isEmpty { spec.platformModules[platform] = names }
        }
        spec.warnings = warnings
        return spec
    }

    static func key(_ s: String) -> CodingKey { Int(s).map { AnyCodingKey(intValue: $0) } ?? AnyCodingKey(stringValue: s) }

    static func hint(_ word: String, _ candidates: [String]) -> String {
        suggestion(for: word, among: candidates).map { " (did you mean '\($0)'?)" } ?? ""
    }

    static func unique(_ items: [String]) -> [String] {
        var seen = Set<String>()
        return items.filter { seen.insert($0.replacingOccurrences(of: "-", with: "_")).inserted }
    }

    static func isValidName(_ name: String) -> Bool {
        guard let first = name.first, first.isLetter, first.isASCII, name.count <= 63 else { return false }
        return name.allSatisfy { ($0.isASCII && ($0.isLowercase || $0.isNumber)) || $0 == "-" }
    }

    static func readText(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ManifestErrors(errors: [ManifestError(location: .init(file: path, line: 1, column: 1), path: "<root>", message: "cannot read the file")])
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ManifestErrors(errors: [ManifestError(location: .init(file: path, line: 1, column: 1), path: "<root>", message: "the file is not UTF-8")])
        }
        return text
    }

    /// A `base:` with a slash or a `.yaml` suffix is a path (absolute, or relative to the manifest).
    static func isBasePath(_ base: String) -> Bool { base.contains("/") || base.hasSuffix(".yaml") }

    /// Where `base:` may be, in order: a path as given; else `Images/<base>.yaml` in the manifest's directory and
    /// each directory above it, the current directory, and Kiln's own `Images/` (beside or above the running
    /// kiln, as in a checkout, or `share/kiln/Images` of an installation), so a manifest copied anywhere finds it.
    static func baseCandidates(_ base: String, near manifest: String) -> [String] {
        let manifestDirectory = URL(fileURLWithPath: manifest).deletingLastPathComponent().standardizedFileURL
        if isBasePath(base) {
            return [base.hasPrefix("/") ? base : manifestDirectory.appendingPathComponent(base).standardizedFileURL.path]
        }
        guard isValidName(base) else { return [] }
        func upwards(_ start: URL) -> [URL] {
            var out: [URL] = [], dir = start
            while true {
                out.append(dir)
                let parent = dir.deletingLastPathComponent()
                if parent.path == dir.path || out.count > 64 { return out }
                dir = parent
            }
        }
        let executable = URL(fileURLWithPath: CommandLine.arguments.first ?? "").resolvingSymlinksInPath().deletingLastPathComponent()
        var candidates = (upwards(manifestDirectory) + [URL(fileURLWithPath: FileManager.default.currentDirectoryPath)])
            .map { $0.appendingPathComponent("Images/\(base).yaml").path }
        for dir in upwards(executable) {
            candidates.append(dir.appendingPathComponent("Images/\(base).yaml").path)
            candidates.append(dir.appendingPathComponent("share/kiln/Images/\(base).yaml").path)
        }
        var seen = Set<String>()
        return candidates.filter { seen.insert($0).inserted }
    }
}

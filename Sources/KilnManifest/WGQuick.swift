import Foundation
import KilnConfig

/// A wg-quick configuration (`wg-quick(8)`, `wg(8)`) as users have it: `[Interface]` with PrivateKey, Address,
/// ListenPort, MTU and DNS, and `[Peer]` sections with PublicKey, PresharedKey, AllowedIPs, Endpoint and
/// PersistentKeepalive. Keys are case-insensitive and `#` starts a comment, as in wg-quick; list values may be
/// comma-separated and repeated. What Kiln cannot honour (PreUp/PostUp/PreDown/PostDown scripts, Table, FwMark,
/// SaveConfig = true) is an error at its line. The secrets are kept as text and never appear in a message.
public struct WGQuickFile: Sendable {
    public struct Value<T: Sendable>: Sendable {
        public var value: T
        public var line: Int
    }
    public struct Peer: Sendable {
        public var line: Int
        public var publicKey: Value<String>?
        public var presharedKey: Value<String>?
        public var allowedIPs: [Value<String>] = []
        public var endpoint: Value<String>?
        public var persistentKeepalive: Value<String>?
    }
    public struct Problem: Error, Equatable, Sendable {
        public var line: Int
        public var message: String
    }

    public var privateKey: Value<String>?
    public var addresses: [Value<String>] = []
    public var listenPort: Value<String>?
    public var mtu: Value<String>?
    /// Read but not applied: the appliance configures no resolver from it (reported as a warning).
    public var dns: Value<String>?
    public var peers: [Peer] = []

    /// Parses `text`; every problem is collected with its line.
    public static func parse(_ text: String) -> (WGQuickFile, [Problem]) {
        var file = WGQuickFile()
        var problems: [Problem] = []
        enum Section { case none, interface, peer }
        var section = Section.none
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = index + 1
            let content = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
            let trimmed = content.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "\r", with: "")
            if trimmed.isEmpty { continue }
            if trimmed.hasPrefix("[") {
                switch trimmed.lowercased() {
                case "[interface]": section = .interface
                case "[peer]": section = .peer; file.peers.append(Peer(line: line))
                default: problems.append(Problem(line: line, message: "unknown section \(trimmed); expected [Interface] or [Peer]"))
                }
                continue
            }
            guard let eq = trimmed.firstIndex(of: "=") else {
                problems.append(Problem(line: line, message: "expected 'Key = Value'"))
                continue
            }
            let key = trimmed[..<eq].trimmingCharacters(in: .whitespaces)
            let value = trimmed[trimmed.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            let item = Value(value: value, line: line)
            let list = value.split(separator: ",").map { Value(value: $0.trimmingCharacters(in: .whitespaces), line: line) }
            switch (section, key.lowercased()) {
            case (.interface, "privatekey"): file.privateKey = item
            case (.interface, "address"): file.addresses += list
            case (.interface, "listenport"): file.listenPort = item
            case (.interface, "mtu"): file.mtu = item
            case (.interface, "dns"): file.dns = item
            case (.interface, "saveconfig") where value.lowercased() == "false": break
            case (.interface, "preup"), (.interface, "postup"), (.interface, "predown"), (.interface, "postdown"):
                problems.append(Problem(line: line, message: "\(key): Kiln runs no wg-quick scripts; use the manifest's services, routes and firewall instead"))
            case (.interface, "table"), (.interface, "fwmark"), (.interface, "saveconfig"):
                problems.append(Problem(line: line, message: "\(key) cannot be honoured: Kiln routes each peer's AllowedIPs through the tunnel in the main table"))
            case (.peer, "publickey"): file.peers[file.peers.count - 1].publicKey = item
            case (.peer, "presharedkey"): file.peers[file.peers.count - 1].presharedKey = item
            case (.peer, "allowedips"): file.peers[file.peers.count - 1].allowedIPs += list
            case (.peer, "endpoint"): file.peers[file.peers.count - 1].endpoint = item
            case (.peer, "persistentkeepalive"): file.peers[file.peers.count - 1].persistentKeepalive = item
            case (.none, _): problems.append(Problem(line: line, message: "'\(key)' outside [Interface] or [Peer]"))
            default: problems.append(Problem(line: line, message: "unknown key '\(key)' in [\(section == .interface ? "Interface" : "Peer")]"))
            }
        }
        if file.privateKey == nil { problems.append(Problem(line: 1, message: "[Interface] has no PrivateKey")) }
        if file.addresses.isEmpty { problems.append(Problem(line: 1, message: "[Interface] has no Address")) }
        for peer in file.peers where peer.publicKey == nil { problems.append(Problem(line: peer.line, message: "[Peer] has no PublicKey")) }
        return (file, problems)
    }
}

/// `vpn: { wgQuick: { file: site.conf } }`: the file's settings become the `vpn:` section, its keys secrets read
/// from it (never printed). Problems are reported at the wg-quick file's line.
public enum WGQuickImport {
    static let defaultListenPort = 51820

    static func section(_ reference: VPNSection.WGQuickReference, interface: String?, manifestDirectory: String,
                        problems: inout [ManifestError], warn: (SourceLocation, String) -> Void) -> VPNSection? {
        let path = reference.file.hasPrefix("/") || manifestDirectory.isEmpty ? reference.file : manifestDirectory + "/" + reference.file
        guard let data = FileManager.default.contents(atPath: path) else {
            problems.append(ManifestError(location: .init(file: path, line: 1, column: 1), path: "vpn.wgQuick", message: "cannot read the wg-quick file"))
            return nil
        }
        let (file, parsed) = WGQuickFile.parse(String(decoding: data, as: UTF8.self))
        return section(file, path: path, interface: interface, problems: &problems, parseProblems: parsed, warn: warn)
    }

    static func section(_ file: WGQuickFile, path: String, interface: String?, problems: inout [ManifestError],
                        parseProblems: [WGQuickFile.Problem] = [], warn: (SourceLocation, String) -> Void) -> VPNSection? {
        let before = problems.count
        func at(_ line: Int) -> SourceLocation { SourceLocation(file: path, line: line, column: 1) }
        func fail(_ line: Int, _ message: String) { problems.append(ManifestError(location: at(line), path: "vpn.wgQuick", message: message)) }
        for p in parseProblems { fail(p.line, p.message) }
        if let exposure = KeyFiles.exposure(path) { warn(at(1), exposure.replacingOccurrences(of: "key file", with: "wg-quick file (it holds private keys)")) }
        if let dns = file.dns { warn(at(dns.line), "DNS is not applied: the appliance configures no resolver from a wg-quick file") }
        func cidrs(_ values: [WGQuickFile.Value<String>], _ what: String) -> [CIDR] {
            values.compactMap { v in
                do throws(ValueError) { return try CIDR(v.value) } catch { fail(v.line, "\(what) '\(v.value)': \(error.message)"); return nil }
            }
        }
        func int(_ v: WGQuickFile.Value<String>?, _ what: String) -> Int? {
            guard let v else { return nil }
            guard let n = Int(v.value) else { fail(v.line, "\(what) '\(v.value)' is not a number"); return nil }
            return n
        }
        let addresses = cidrs(file.addresses, "Address")
        var listenPort = int(file.listenPort, "ListenPort") ?? 0
        if file.listenPort == nil {
            listenPort = defaultListenPort
            warn(at(1), "[Interface] has no ListenPort; the appliance listens on \(defaultListenPort)")
        }
        let mtu = int(file.mtu, "MTU")
        var peers: [VPNPeerSpec] = []
        for peer in file.peers {
            var keepalive: Int?
            if let k = peer.persistentKeepalive, k.value.lowercased() != "off" { keepalive = int(k, "PersistentKeepalive") }
            peers.append(VPNPeerSpec(
                publicKey: peer.publicKey?.value ?? "",
                presharedKey: peer.presharedKey.map { SecretSource(imported: $0.value, origin: "the PresharedKey at \(path):\($0.line)") },
                allowedIPs: cidrs(peer.allowedIPs, "AllowedIPs"), endpoint: peer.endpoint?.value, persistentKeepalive: keepalive))
        }
        guard problems.count == before, let key = file.privateKey else { return nil }
        return VPNSection(interface: interface, addresses: addresses, listenPort: listenPort,
                          privateKey: SecretSource(imported: key.value, origin: "the PrivateKey at \(path):\(key.line)"),
                          peers: peers, mtu: mtu)
    }

    /// The `vpn:` section a wg-quick file amounts to, as YAML for a manifest, its keys left for the user to place
    /// (`{ file: … }` or `{ env: … }`): `kiln vpn import` prints it.
    static func yaml(_ section: VPNSection, source: String) -> String {
        var lines = ["# Imported from \(source). The keys are not printed: put each in a file (chmod 600) or an",
                     "# environment variable, and point privateKey/presharedKey at it.", "vpn:"]
        if let interface = section.interface { lines.append("  interface: \(interface)") }
        lines.append("  addresses: [\(section.addresses.map(\.description).joined(separator: ", "))]")
        lines.append("  listenPort: \(section.listenPort)")
        if let mtu = section.mtu { lines.append("  mtu: \(mtu)") }
        lines.append("  privateKey: { env: WG_PRIVATE_KEY }")
        lines.append("  peers:")
        for (i, p) in section.peers.enumerated() {
            lines.append("    - publicKey: \(p.publicKey)")
            if p.presharedKey != nil { lines.append("      presharedKey: { env: WG_PRESHARED_KEY_\(i) }") }
            lines.append("      allowedIPs: [\(p.allowedIPs.map(\.description).joined(separator: ", "))]")
            if let e = p.endpoint { lines.append("      endpoint: \"\(e)\"") }
            if let k = p.persistentKeepalive { lines.append("      persistentKeepalive: \(k)") }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

extension WGQuickImport {
    /// `kiln vpn import`: the YAML for `path`, and the warnings; throws `ManifestErrors` at the file's lines.
    public static func importYAML(path: String) throws -> (yaml: String, warnings: [ManifestError]) {
        var problems: [ManifestError] = []
        var warnings: [ManifestError] = []
        let section = WGQuickImport.section(.init(file: path), interface: nil, manifestDirectory: "", problems: &problems) { location, message in
            var w = ManifestError(location: location, path: "vpn.wgQuick", message: message)
            w.isWarning = true
            warnings.append(w)
        }
        guard let section, problems.isEmpty else { throw ManifestErrors(errors: problems) }
        return (yaml(section, source: path), warnings)
    }
}

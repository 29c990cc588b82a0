import KilnConfig

/// A named nftables set: IPv4 or IPv6 prefixes, or ports. Address sets are interval sets, so a lookup costs
/// about the same with 10 or 100,000 prefixes. Elements come inline and/or from `file` (one per line,
/// relative to the manifest, `#` comments), read by `FirewallSpec.loadingSetFiles(baseDirectory:)`.
public struct NamedSet: Codable, Sendable, Equatable {
    /// What a set holds.
    public enum Kind: String, Codable, Sendable, Equatable {
        case ipv4, ipv6, port
        /// The nftables element type.
        var nftType: String {
            switch self { case .ipv4: "ipv4_addr"; case .ipv6: "ipv6_addr"; case .port: "inet_service" }
        }
        public init(from decoder: Decoder) throws {
            self = try decodeText(decoder) { t throws(ValueError) in
                guard let k = Kind(rawValue: t) else { throw ValueError("'\(t)' is not a set type (expected ipv4, ipv6 or port)") }
                return k
            }
        }
    }

    /// Filled from the key in `sets:`.
    public var name: String
    public var kind: Kind
    public var elements: [SetElement]
    /// A file of further elements, relative to the manifest.
    public var file: String?
    /// Elements read from `file` with their 1-based line numbers; not part of the manifest encoding.
    public var fileElements: [(element: SetElement, line: Int)] = []

    public init(name: String, kind: Kind, elements: [SetElement], file: String? = nil) {
        self.name = name; self.kind = kind; self.elements = elements; self.file = file
    }

    enum CodingKeys: String, CodingKey { case kind = "type", elements, file }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = decoder.codingPath.last?.stringValue ?? ""
        kind = try c.decode(Kind.self, forKey: .kind)
        file = try c.decodeIfPresent(String.self, forKey: .file)
        elements = []
        if c.contains(.elements) {
            var list = try c.nestedUnkeyedContainer(forKey: .elements)
            while !list.isAtEnd {
                let path = list.codingPath + [AnyCodingKey(intValue: list.currentIndex)]
                let text = try scalarText(try list.superDecoder())
                do { elements.append(try SetElement(text, kind: kind)) } catch {
                    throw DecodingError.dataCorrupted(.init(codingPath: path, debugDescription: error.message))
                }
            }
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(kind, forKey: .kind)
        try c.encode(elements.map(\.description), forKey: .elements)
        try c.encodeIfPresent(file, forKey: .file)
    }

    public static func == (a: NamedSet, b: NamedSet) -> Bool {
        a.name == b.name && a.kind == b.kind && a.elements == b.elements && a.file == b.file
            && a.fileElements.map(\.element) == b.fileElements.map(\.element) && a.fileElements.map(\.line) == b.fileElements.map(\.line)
    }

    /// Parses the text of `file`: one element per line, blank lines and `#` comments ignored.
    /// Errors name the file and line: `blocklist.txt:17: '10.0.0.256/8' is not ...`.
    public static func parseFile(_ text: String, kind: Kind, file: String) throws(ValueError) -> [(element: SetElement, line: Int)] {
        var out: [(SetElement, Int)] = []
        var number = 0
        for raw in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            number += 1
            var line = raw
            if let hash = line.firstIndex(of: "#") { line = line[..<hash] }
            let trimmed = line.trimmingASCIISpace
            if trimmed.isEmpty { continue }
            do { out.append((try SetElement(String(trimmed), kind: kind), number)) } catch {
                throw ValueError("\(file):\(number): \(error.message)")
            }
        }
        return out
    }
}

/// One element of a named set: a network prefix (a bare address is a /32 or /128) or a port range.
public enum SetElement: Hashable, Sendable, CustomStringConvertible {
    case prefix(CIDR)
    case port(PortRange)

    public init(_ text: String, kind: NamedSet.Kind) throws(ValueError) {
        switch kind {
        case .port:
            self = .port(try PortRange(text))
        case .ipv4, .ipv6:
            let cidr = try CIDR(text)
            guard cidr.address.isV4 == (kind == .ipv4) else {
                throw ValueError("'\(text)' is an \(cidr.address.isV4 ? "IPv4" : "IPv6") prefix in a set of type \(kind.rawValue)")
            }
            guard cidr.isNetwork else {
                throw ValueError("'\(text)' has host bits set; did you mean \(cidr.network)/\(cidr.prefixLength)?")
            }
            self = .prefix(cidr)
        }
    }

    public var description: String {
        switch self {
        case let .prefix(c): return c.prefixLength == c.address.bitWidth ? c.address.description : c.description
        case let .port(p): return p.description
        }
    }
}

extension Substring {
    var trimmingASCIISpace: Substring {
        var s = self
        while let f = s.first, f == " " || f == "\t" || f == "\r" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\r" { s.removeLast() }
        return s
    }
}

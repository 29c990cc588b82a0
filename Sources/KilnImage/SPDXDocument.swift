import Foundation

/// A package that went into an image, as the SBOM records it.
public struct SBOMPackage: Sendable, Equatable {
    public var name: String
    public var version: String
    public var architecture: String
    /// SHA-256 of the .deb file.
    public var sha256: String
    /// Where the .deb came from (its `Filename` in the repository, e.g. `pool/main/n/nftables/...deb`), or
    /// empty for NOASSERTION.
    public var downloadLocation: String
    public var supplier: String

    public init(name: String, version: String, architecture: String, sha256: String, downloadLocation: String,
                supplier: String = "Organization: Debian") {
        self.name = name
        self.version = version
        self.architecture = architecture
        self.sha256 = sha256
        self.downloadLocation = downloadLocation
        self.supplier = supplier
    }
}

/// Writes an SPDX 2.3 JSON document (https://spdx.github.io/spdx-spec/v2.3/) describing an image and the
/// packages it contains. Deterministic: packages sorted, keys sorted, `created` from SOURCE_DATE_EPOCH, and
/// `documentNamespace` derived from a hash of the image name and package list, so the same inputs give the
/// same bytes and different inputs a different namespace.
public enum SPDXDocument {
    /// The document as pretty-printed JSON with sorted keys and a final newline.
    public static func json(imageName: String, imageVersion: String? = nil, packages: [SBOMPackage],
                            epoch: Int, creator: String = "Tool: kiln") throws -> [UInt8] {
        let sorted = packages.sorted { ($0.name, $0.architecture, $0.version) < ($1.name, $1.architecture, $1.version) }
        let identity = ([imageName, imageVersion ?? ""] + sorted.map {
            [$0.name, $0.version, $0.architecture, $0.sha256, $0.downloadLocation, $0.supplier].joined(separator: "\0")
        }).joined(separator: "\n")
        let digest = Hashing.sha256(identity)
        let rootID = "SPDXRef-Image-" + spdxIDPart(imageName)
        var documentPackages = [Package(
            SPDXID: rootID, name: imageName, versionInfo: imageVersion, supplier: nil, downloadLocation: "NOASSERTION",
            filesAnalyzed: false, checksums: nil, licenseConcluded: "NOASSERTION", licenseDeclared: "NOASSERTION",
            copyrightText: "NOASSERTION", externalRefs: nil, primaryPackagePurpose: "OPERATING-SYSTEM")]
        var relationships = [Relationship(spdxElementId: "SPDXRef-DOCUMENT", relationshipType: "DESCRIBES", relatedSpdxElement: rootID)]
        for package in sorted {
            let id = "SPDXRef-Package-deb-\(spdxIDPart(package.name))-\(spdxIDPart(package.architecture))-"
                + Hashing.sha256([package.name, package.version, package.architecture].joined(separator: "\0")).prefix(12)
            documentPackages.append(Package(
                SPDXID: id, name: package.name, versionInfo: package.version, supplier: package.supplier,
                downloadLocation: package.downloadLocation.isEmpty ? "NOASSERTION" : package.downloadLocation,
                filesAnalyzed: false, checksums: [Checksum(algorithm: "SHA256", checksumValue: package.sha256)],
                licenseConcluded: "NOASSERTION", licenseDeclared: "NOASSERTION", copyrightText: "NOASSERTION",
                externalRefs: [ExternalRef(referenceCategory: "PACKAGE-MANAGER", referenceType: "purl",
                                           referenceLocator: purl(package))],
                primaryPackagePurpose: nil))
            relationships.append(Relationship(spdxElementId: rootID, relationshipType: "CONTAINS", relatedSpdxElement: id))
        }
        let document = Document(
            spdxVersion: "SPDX-2.3", dataLicense: "CC0-1.0", SPDXID: "SPDXRef-DOCUMENT", name: imageName,
            documentNamespace: "https://spdx.org/spdxdocs/kiln-\(spdxIDPart(imageName))-\(digest)",
            creationInfo: CreationInfo(created: timestamp(epoch), creators: [creator]),
            packages: documentPackages, relationships: relationships)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(document)) + [0x0a]
    }

    /// `pkg:deb/debian/<name>@<version>?arch=<arch>` (package-url spec, version percent-encoded).
    static func purl(_ package: SBOMPackage) -> String {
        "pkg:deb/debian/\(percentEncoded(package.name))@\(percentEncoded(package.version))?arch=\(percentEncoded(package.architecture))"
    }

    static func percentEncoded(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            let c = Character(Unicode.Scalar(byte))
            if c.isASCII && (c.isLetter || c.isNumber || c == "." || c == "-" || c == "_" || c == "~") {
                out.append(c)
            } else {
                out += "%" + (byte < 16 ? "0" : "") + String(byte, radix: 16, uppercase: true)
            }
        }
        return out
    }

    /// SPDX identifiers allow letters, digits, `.` and `-` only.
    static func spdxIDPart(_ text: String) -> String {
        String(text.map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "-") ? $0 : "-" })
    }

    /// `YYYY-MM-DDThh:mm:ssZ` in UTC.
    static func timestamp(_ epoch: Int) -> String {
        var seconds = time_t(epoch)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T"
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))Z"
    }

    struct Document: Encodable {
        var spdxVersion: String, dataLicense: String, SPDXID: String, name: String, documentNamespace: String
        var creationInfo: CreationInfo
        var packages: [Package]
        var relationships: [Relationship]
    }

    struct CreationInfo: Encodable {
        var created: String
        var creators: [String]
    }

    struct Package: Encodable {
        var SPDXID: String, name: String, versionInfo: String?, supplier: String?, downloadLocation: String
        var filesAnalyzed: Bool
        var checksums: [Checksum]?
        var licenseConcluded: String, licenseDeclared: String, copyrightText: String
        var externalRefs: [ExternalRef]?
        var primaryPackagePurpose: String?
    }

    struct Checksum: Encodable {
        var algorithm: String, checksumValue: String
    }

    struct ExternalRef: Encodable {
        var referenceCategory: String, referenceType: String, referenceLocator: String
    }

    struct Relationship: Encodable {
        var spdxElementId: String, relationshipType: String, relatedSpdxElement: String
    }
}

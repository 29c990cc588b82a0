import Foundation
import Glibc
import Testing
@testable import KilnImage

/// Atomic outputs, hashing helpers and the SPDX document.
@Suite struct OutputTests {
    struct Interrupted: Error {}

    /// Two builds filling the same cache entry at once: the one that publishes second keeps the first one's copy
    /// (another build may be reading it) and leaves no temporary behind; an unfinished leftover is replaced.
    @Test func aPublishedCacheEntryIsNeverReplaced() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let staging = Staging(cacheDirectory: dir.path)
        let entry = dir.path + "/roots/abc"
        try staging.publish(entry) { tmp in try FileSystem.writeFile(tmp + "/who", Array("first".utf8), sync: false) }
        let before = try #require(FileSystem.lstat(entry)).st_ino
        try staging.publish(entry) { tmp in try FileSystem.writeFile(tmp + "/who", Array("second".utf8), sync: false) }
        #expect(try FileSystem.readFile(entry + "/who") == Array("first".utf8))
        #expect(try #require(FileSystem.lstat(entry)).st_ino == before)
        #expect(try FileSystem.listDirectory(dir.path + "/roots") == ["abc"])

        let leftover = dir.path + "/roots/def"
        try FileSystem.makeDirectories(leftover)
        try FileSystem.writeFile(leftover + "/who", Array("interrupted".utf8), sync: false)
        try staging.publish(leftover) { tmp in try FileSystem.writeFile(tmp + "/who", Array("whole".utf8), sync: false) }
        #expect(try FileSystem.readFile(leftover + "/who") == Array("whole".utf8))
        #expect(FileSystem.lstat(leftover + "/.complete") != nil)
    }

    @Test func replaceDirectorySwapsAndCleansUp() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let out = dir.path + "/out/router"
        try AtomicOutput.replaceDirectory(at: out) { tmp in
            try FileSystem.writeFile(tmp + "/vmlinuz", Array("v1".utf8), sync: false)
            try FileSystem.writeFile(tmp + "/only-in-v1", [], sync: false)
        }
        #expect(try FileSystem.readFile(out + "/vmlinuz") == Array("v1".utf8))
        let value = try AtomicOutput.replaceDirectory(at: out) { tmp -> Int in
            try FileSystem.writeFile(tmp + "/vmlinuz", Array("v2".utf8), sync: false)
            return 42
        }
        #expect(value == 42)
        #expect(try FileSystem.readFile(out + "/vmlinuz") == Array("v2".utf8))
        #expect(FileSystem.lstat(out + "/only-in-v1") == nil, "the previous version is gone, not merged")
        #expect(try FileSystem.listDirectory(dir.path + "/out") == ["router"], "no temporary or old directories left")
    }

    @Test func aFailedBuildLeavesThePreviousOutputIntact() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let out = dir.path + "/out/router"
        try AtomicOutput.replaceDirectory(at: out) { tmp in
            try FileSystem.writeFile(tmp + "/initramfs.cpio.zst", Array("good".utf8), sync: false)
        }
        #expect(throws: Interrupted.self) {
            try AtomicOutput.replaceDirectory(at: out) { tmp in
                try FileSystem.writeFile(tmp + "/initramfs.cpio.zst", Array("half-writ".utf8), sync: false)
                throw Interrupted()
            }
        }
        #expect(try FileSystem.readFile(out + "/initramfs.cpio.zst") == Array("good".utf8))
        #expect(try FileSystem.listDirectory(dir.path + "/out") == ["router"])
        // A stale temporary directory from a killed build is replaced, not merged into the next output.
        try FileSystem.makeDirectories(dir.path + "/out/.router.tmp-\(getpid())")
        try FileSystem.writeFile(dir.path + "/out/.router.tmp-\(getpid())/stale", [], sync: false)
        try AtomicOutput.replaceDirectory(at: out) { tmp in
            try FileSystem.writeFile(tmp + "/initramfs.cpio.zst", Array("new".utf8), sync: false)
        }
        #expect(try FileSystem.listDirectory(out) == ["initramfs.cpio.zst"])
    }

    @Test func atomicWriteReplacesFiles() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let path = dir.path + "/build.json"
        try AtomicOutput.write(Array("one".utf8), to: path)
        try AtomicOutput.write(Array("two".utf8), to: path, mode: 0o600)
        #expect(try FileSystem.readFile(path) == Array("two".utf8))
        #expect(try #require(FileSystem.lstat(path)).st_mode & 0o777 == 0o600)
        #expect(try FileSystem.listDirectory(dir.path) == ["build.json"])
        #expect(throws: ImageError.self) { try AtomicOutput.write([], to: dir.path + "/missing-dir/x") }
    }

    @Test func fileHashesMatchSha256sum() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        var generator = SplitMix64(seed: 9)
        let bytes = (0..<(3 << 20) + 17).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
        try dir.write("blob", bytes)
        let tool = try runTool("sha256sum", [dir.path + "/blob"]).text.prefix(64)
        let (hash, size) = try Hashing.sha256(file: dir.path + "/blob")
        #expect(hash == String(tool))
        #expect(size == bytes.count)
        #expect(Hashing.sha256(bytes) == hash)
        #expect(Hashing.sha256("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(Sizes.format(512) == "512 B")
        #expect(Sizes.format(4_928_307) == "4.7 MiB")
        #expect(Sizes.format(14_186_432) == "13.5 MiB")
    }

    func packages() -> [SBOMPackage] {
        [
            SBOMPackage(name: "libnftables1", version: "1.0.6-2+deb12u2", architecture: "amd64", sha256: String(repeating: "a", count: 64),
                        downloadLocation: "pool/main/n/nftables/libnftables1_1.0.6-2+deb12u2_amd64.deb"),
            SBOMPackage(name: "libc6", version: "2.36-9+deb12u10", architecture: "amd64", sha256: String(repeating: "b", count: 64),
                        downloadLocation: "pool/main/g/glibc/libc6_2.36-9+deb12u10_amd64.deb"),
            SBOMPackage(name: "libstdc++6", version: "1:12.2.0-14", architecture: "amd64", sha256: String(repeating: "c", count: 64),
                        downloadLocation: ""),
        ]
    }

    @Test func spdxDocumentIsValidAndDeterministic() throws {
        let bytes = try SPDXDocument.json(imageName: "router", packages: packages(), epoch: 1_700_000_000)
        #expect(try SPDXDocument.json(imageName: "router", packages: packages().reversed(), epoch: 1_700_000_000) == bytes)
        let document = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
        #expect(document["spdxVersion"] as? String == "SPDX-2.3")
        #expect(document["dataLicense"] as? String == "CC0-1.0")
        #expect(document["SPDXID"] as? String == "SPDXRef-DOCUMENT")
        #expect(document["name"] as? String == "router")
        let namespace = try #require(document["documentNamespace"] as? String)
        #expect(URL(string: namespace)?.scheme == "https")
        let creation = try #require(document["creationInfo"] as? [String: Any])
        #expect(creation["created"] as? String == "2023-11-14T22:13:20Z")
        #expect((creation["creators"] as? [String])?.first?.hasPrefix("Tool: ") == true)

        let list = try #require(document["packages"] as? [[String: Any]])
        #expect(list.count == 4)
        let ids = list.compactMap { $0["SPDXID"] as? String }
        #expect(Set(ids).count == 4)
        for id in ids {
            #expect(id.hasPrefix("SPDXRef-") && id.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == ".") })
        }
        for package in list {
            for key in ["SPDXID", "name", "downloadLocation", "licenseConcluded", "licenseDeclared", "copyrightText"] {
                #expect(package[key] is String, "package field \(key)")
            }
            #expect(package["filesAnalyzed"] as? Bool == false)
        }
        let libc = try #require(list.first { $0["name"] as? String == "libc6" })
        #expect(libc["versionInfo"] as? String == "2.36-9+deb12u10")
        #expect(libc["supplier"] as? String == "Organization: Debian")
        #expect(libc["downloadLocation"] as? String == "pool/main/g/glibc/libc6_2.36-9+deb12u10_amd64.deb")
        let checksums = try #require(libc["checksums"] as? [[String: String]])
        #expect(checksums == [["algorithm": "SHA256", "checksumValue": String(repeating: "b", count: 64)]])
        let refs = try #require(list.first { $0["name"] as? String == "libstdc++6" }?["externalRefs"] as? [[String: String]])
        #expect(refs.first?["referenceLocator"] == "pkg:deb/debian/libstdc%2B%2B6@1%3A12.2.0-14?arch=amd64")
        #expect(list.first { $0["name"] as? String == "libstdc++6" }?["downloadLocation"] as? String == "NOASSERTION")

        let relationships = try #require(document["relationships"] as? [[String: String]])
        #expect(relationships.filter { $0["relationshipType"] == "DESCRIBES" }.count == 1)
        #expect(relationships.filter { $0["relationshipType"] == "CONTAINS" }.count == 3)
        let known = Set(ids + ["SPDXRef-DOCUMENT"])
        #expect(relationships.allSatisfy { known.contains($0["spdxElementId"] ?? "") && known.contains($0["relatedSpdxElement"] ?? "") })

        var changed = packages()
        changed[0].sha256 = String(repeating: "d", count: 64)
        let other = try SPDXDocument.json(imageName: "router", packages: changed, epoch: 1_700_000_000)
        let otherNamespace = (try JSONSerialization.jsonObject(with: Data(other)) as? [String: Any])?["documentNamespace"] as? String
        #expect(otherNamespace != namespace, "a different package set gets a different namespace")
    }
}

import Glibc
import KilnConfig

extension FirewallSpec {
    /// The spec with every set's `file` read and parsed into `fileElements`. Relative paths are resolved
    /// against `baseDirectory` (the manifest's directory). Errors name the setting and the file's line.
    public func loadingSetFiles(baseDirectory: String, root: String = "firewall") throws(FirewallIssue) -> FirewallSpec {
        var spec = self
        for i in spec.sets.indices {
            guard let file = spec.sets[i].file else { continue }
            let path = file.hasPrefix("/") ? file : baseDirectory + "/" + file
            let at = "\(root).sets.\(spec.sets[i].name).file"
            let text: String
            do { text = try readTextFile(path) } catch { throw FirewallIssue(path: at, message: "cannot read '\(path)': \(error.message)") }
            do { spec.sets[i].fileElements = try NamedSet.parseFile(text, kind: spec.sets[i].kind, file: file) } catch {
                throw FirewallIssue(path: at, message: error.message)
            }
        }
        return spec
    }
}

/// The whole file as UTF-8 text; errors carry strerror.
func readTextFile(_ path: String) throws(ValueError) -> String {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw ValueError(String(cString: strerror(errno))) }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 {
            if errno == EINTR { continue }
            throw ValueError(String(cString: strerror(errno)))
        }
        if n == 0 { break }
        bytes.append(contentsOf: chunk[0..<n])
    }
    return String(decoding: bytes, as: UTF8.self)
}

import CNftables
import Glibc

/// Owner of one libnftables context (`struct nft_ctx`); `deinit` frees it. Output and errors are buffered,
/// so failures come back as `NftError` with libnftables' own messages parsed to line and column.
/// Every call is one `nft_run_cmd_from_buffer`: one netlink batch, one kernel transaction, all or nothing.
///
/// libnftables works in the network namespace of the calling thread. Even a dry run needs CAP_NET_ADMIN
/// there (it reads the kernel's ruleset cache); an unprivileged builder can get it with a user+network
/// namespace (`unshare -rn`).
public struct Nftables: ~Copyable {
    private let ctx: OpaquePointer

    public init() throws(NftError) {
        guard let ctx = nft_ctx_new(UInt32(NFT_CTX_DEFAULT)) else {
            throw NftError(operation: .open, output: "nft_ctx_new failed", diagnostics: [])
        }
        _ = nft_ctx_buffer_output(ctx)
        _ = nft_ctx_buffer_error(ctx)
        self.ctx = ctx
    }

    deinit { nft_ctx_free(ctx) }

    /// Parses and evaluates `ruleset` against the kernel's current state without committing anything.
    public func check(_ ruleset: String) throws(NftError) { _ = try run(ruleset, operation: .check) }

    /// Commits `ruleset` in one transaction; on error nothing changes.
    public func apply(_ ruleset: String) throws(NftError) { _ = try run(ruleset, operation: .apply) }

    /// `check` with errors mapped through the ruleset's source map to the manifest setting.
    public func check(_ ruleset: CompiledRuleset) throws(NftError) {
        do { try check(ruleset.text) } catch { throw ruleset.explain(error) }
    }

    /// `apply` with errors mapped through the ruleset's source map to the manifest setting.
    public func apply(_ ruleset: CompiledRuleset) throws(NftError) {
        do { try apply(ruleset.text) } catch { throw ruleset.explain(error) }
    }

    /// Runs nft commands (e.g. `list counters table inet kiln`) and returns their output.
    public func run(_ commands: String) throws(NftError) -> String { try run(commands, operation: .run) }

    private func run(_ text: String, operation: NftError.Operation) throws(NftError) -> String {
        nft_ctx_set_dry_run(ctx, operation == .check)
        // libnftables 1.0.x loses the line and column of evaluation errors for buffer input (it quotes the
        // first line instead), but keeps them for files: hand it the text as an in-memory file when /proc
        // is there. Either way it is one nft run, one transaction.
        let status: Int32
        if operation != .run, let file = MemoryFile(text) {
            status = nft_run_cmd_from_filename(ctx, file.path)
        } else {
            status = nft_run_cmd_from_buffer(ctx, text)
        }
        // Reading a buffer also rewinds it for the next command.
        let output = nft_ctx_get_output_buffer(ctx).map { String(cString: $0) } ?? ""
        let errors = nft_ctx_get_error_buffer(ctx).map { String(cString: $0) } ?? ""
        guard status == 0 else {
            let message = errors.isEmpty ? "libnftables failed with status \(status)" : errors
            throw NftError(operation: operation, output: message, diagnostics: NftError.parse(message))
        }
        return output
    }
}

/// Text in a memfd, reachable as `/proc/self/fd/N` while this value lives.
private struct MemoryFile: ~Copyable {
    let fd: Int32
    var path: String { "/proc/self/fd/\(fd)" }

    init?(_ text: String) {
        // memfd_create(2) is behind _GNU_SOURCE in the C headers Swift sees, so look the symbol up.
        typealias Create = @convention(c) (UnsafePointer<CChar>, UInt32) -> Int32
        guard let symbol = dlsym(nil, "memfd_create") else { return nil }
        let fd = unsafeBitCast(symbol, to: Create.self)("kiln-ruleset", 1 /* MFD_CLOEXEC */)
        guard fd >= 0 else { return nil }
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { close(fd); return nil }
            bytes = bytes.dropFirst(n)
        }
        guard access("/proc/self/fd/\(fd)", R_OK) == 0 else { close(fd); return nil }
        self.fd = fd
    }

    deinit { close(fd) }
}

/// libnftables rejected a ruleset. `diagnostics` holds each `Error:` it printed, with the ruleset line and
/// columns and, once mapped through a `CompiledRuleset`, the manifest setting that line came from.
public struct NftError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Operation: String, Sendable { case open, check, apply, run }
    public var operation: Operation
    /// libnftables' error output, verbatim.
    public var output: String
    public var diagnostics: [NftDiagnostic]

    public init(operation: Operation, output: String, diagnostics: [NftDiagnostic]) {
        self.operation = operation; self.output = output; self.diagnostics = diagnostics
    }

    public var description: String {
        guard !diagnostics.isEmpty else { return "nftables \(operation.rawValue) failed: \(output)" }
        return diagnostics.map(\.description).joined(separator: "\n")
    }

    /// Parses libnftables' error text: `<cmdline>:45:27-31: Error: <message>`, then the offending line and
    /// a marker line. Errors without a location (`netlink: Error: …`) keep only the message.
    public static func parse(_ output: String) -> [NftDiagnostic] {
        let lines = output.split(separator: "\n", omittingEmptySubsequences: false)
        var out: [NftDiagnostic] = []
        for (i, line) in lines.enumerated() {
            guard let marker = find("Error: ", in: line) else { continue }
            let message = String(line[marker.upperBound...])
            var d = NftDiagnostic(line: nil, columns: nil, message: message, text: nil, origin: nil)
            let location = line[..<marker.lowerBound].dropLast(2)  // "…:L:C-C" before ": "
            let fields = location.split(separator: ":")
            if fields.count >= 3, let n = Int(fields[fields.count - 2]) {
                d.line = n
                let cols = fields[fields.count - 1].split(separator: "-").compactMap { Int($0) }
                if let lo = cols.first { d.columns = lo...max(lo, cols.last ?? lo) }
                if i + 1 < lines.count { d.text = String(lines[i + 1]) }
            }
            out.append(d)
        }
        return out
    }
}

/// The first occurrence of `needle` in `text` (no Foundation in guest code).
func find(_ needle: String, in text: Substring) -> Range<Substring.Index>? {
    let n = Array(needle.utf8)
    var i = text.startIndex
    while i < text.endIndex {
        var j = i, k = 0
        while k < n.count, j < text.endIndex, text.utf8[j] == n[k] { j = text.utf8.index(after: j); k += 1 }
        if k == n.count { return i..<j }
        i = text.utf8.index(after: i)
    }
    return nil
}

/// One error from libnftables.
public struct NftDiagnostic: Sendable, Equatable, CustomStringConvertible {
    /// 1-based line in the ruleset text.
    public var line: Int?
    public var columns: ClosedRange<Int>?
    public var message: String
    /// The ruleset line libnftables quoted.
    public var text: String?
    /// The manifest setting behind the line, e.g. `firewall.rules[2]`.
    public var origin: String?

    public init(line: Int?, columns: ClosedRange<Int>?, message: String, text: String?, origin: String?) {
        self.line = line; self.columns = columns; self.message = message; self.text = text; self.origin = origin
    }

    public var description: String {
        var s = ""
        if let origin { s += origin + ": " }
        s += "nftables: " + message
        if let line { s += " (ruleset line \(line)" + (columns.map { ":\($0.lowerBound)" } ?? "") + ")" }
        if let text { s += "\n    " + text.drop { $0 == " " || $0 == "\t" } }
        return s
    }
}

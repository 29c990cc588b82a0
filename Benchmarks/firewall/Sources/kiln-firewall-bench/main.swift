// kiln-firewall-bench: generates Kiln firewall rulesets of a given size and applies them through
// KilnFirewall's Nftables owner, printing timings. Driven by Benchmarks/firewall/run.sh.
//
//   kiln-firewall-bench gen <set|linear> <entries> <out.nft>   compile a ruleset, print compile ms
//   kiln-firewall-bench apply <file.nft>                        apply in the current netns, print apply ms
import Glibc
import KilnConfig
import KilnFirewall

func now() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) * 1000 + Double(t.tv_nsec) / 1e6
}

func fail(_ message: String) -> Never {
    let line = Array("kiln-firewall-bench: \(message)\n".utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    exit(2)
}

/// `count` distinct public-looking prefixes (/24 and /32 mixed), deterministic, never inside the
/// benchmark's own 10.0.0.0/8 addresses.
func prefixes(_ count: Int) -> [CIDR] {
    var seen = Set<UInt32>()
    var out: [CIDR] = []
    var state: UInt64 = 0x9E37_79B9_7F4A_7C15
    while out.count < count {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        let v = UInt32(truncatingIfNeeded: state >> 32)
        let first = v >> 24
        guard first >= 1, first < 224, first != 10, first != 127 else { continue }
        let host = out.count % 4 == 0
        let base = host ? v : v & 0xffff_ff00
        // Keep /32s out of any /24 already chosen and vice versa, so every entry survives de-duplication.
        guard seen.insert(base & 0xffff_ff00).inserted else { continue }
        guard let cidr = try? CIDR(address: .v4(IPv4Address(base)), prefixLength: host ? 32 : 24) else { continue }
        out.append(cidr)
    }
    return out
}

func spec(kind: String, entries: Int) -> FirewallSpec {
    guard let wan = try? InterfaceName("wan"), let lan = try? InterfaceName("lan") else { fail("interface names") }
    var s = FirewallSpec(zones: [Zone(name: "wan", interfaces: [wan]), Zone(name: "lan", interfaces: [lan])],
                         policies: [Policy(from: "wan", to: "lan", action: .accept), Policy(from: "lan", to: "wan", action: .accept)])
    let list = prefixes(entries)
    if kind == "set" {
        s.sets = [NamedSet(name: "blocklist", kind: .ipv4, elements: list.map { .prefix($0) })]
        s.rules = [Rule(from: "wan", to: nil, source: .set("blocklist"), action: .drop, early: true)]
    } else {
        s.rules = list.map { Rule(from: "wan", to: nil, source: .prefixes([$0]), action: .drop, early: true) }
    }
    return s
}

func write(_ path: String, _ text: String) {
    let temp = path + ".tmp"
    guard let f = fopen(temp, "w") else { fail("cannot write \(temp)") }
    fputs(text, f)
    fclose(f)
    guard rename(temp, path) == 0 else { fail("rename \(temp)") }
}

func read(_ path: String) -> String {
    guard let f = fopen(path, "r") else { fail("cannot read \(path)") }
    defer { fclose(f) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = fread(&chunk, 1, chunk.count, f)
        if n == 0 { break }
        bytes += chunk[0..<n]
    }
    return String(decoding: bytes, as: UTF8.self)
}

let args = CommandLine.arguments
switch (args.count, args.count > 1 ? args[1] : "") {
case (5, "gen"):
    guard let n = Int(args[3]), args[2] == "set" || args[2] == "linear" else { fail("usage: gen <set|linear> <entries> <out>") }
    let s = spec(kind: args[2], entries: n)
    let start = now()
    let compiled = FirewallCompiler.compile(s)
    let ms = now() - start
    write(args[4], compiled.text)
    print("compile_ms=\(Int(ms.rounded()))")
case (3, "apply"):
    let text = read(args[2])
    let start = now()
    do {
        let nft = try Nftables()
        try nft.apply(text)
    } catch { fail("\(error)") }
    print("apply_ms=\(Int((now() - start).rounded()))")
default:
    fail("usage: gen <set|linear> <entries> <out.nft> | apply <file.nft>")
}

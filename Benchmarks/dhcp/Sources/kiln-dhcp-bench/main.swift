import Glibc
import KilnConfig
import KilnDHCP

// kiln-dhcp-bench: the DHCP benchmark's two halves.
//   kiln-dhcp-bench serve <dhcp.json> [--quiet]     Kiln's server, as `kiln-init service dhcp` runs it
//   kiln-dhcp-bench load --interface IF [--clients N] [--window W] [--label NAME] [--deadline S]
// The load generator speaks DHCP itself over one UDP socket for many MACs (DISCOVER/OFFER/REQUEST/ACK),
// sets the broadcast flag so every server answers the same way, and prints one JSON line of results.

func fail(_ message: String) -> Never {
    let bytes = Array("kiln-dhcp-bench: \(message)\n".utf8)
    _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    exit(2)
}

var args = Array(CommandLine.arguments.dropFirst())
guard let mode = args.first else { fail("usage: kiln-dhcp-bench serve <dhcp.json> [--quiet] | load --interface IF [--clients N] [--window W]") }
args.removeFirst()

func option(_ name: String, in args: [String]) -> String? {
    guard let i = args.firstIndex(of: name), i + 1 < args.count else { return nil }
    return args[i + 1]
}

switch mode {
case "serve":
    guard let path = args.first else { fail("serve needs the path of a dhcp.json") }
    if args.contains("--quiet") {
        let config: DHCPServerConfig
        do { config = try DHCPServerConfig.load(path: path) } catch { fail("\(error)") }
        do {
            let server = try DHCPServer(config: config) { _ in }
            installStopHandler()
            server.serve { stopRequested() }
        } catch { fail("\(error)") }
        exit(0)
    }
    exit(DHCPServer.run(configPath: path))
case "load":
    guard let ifname = option("--interface", in: args) else { fail("load needs --interface") }
    let clients = option("--clients", in: args).flatMap { Int($0) } ?? 1000
    let window = option("--window", in: args).flatMap { Int($0) } ?? 32
    let deadline = option("--deadline", in: args).flatMap { Double($0) } ?? 60
    let label = option("--label", in: args) ?? "server"
    var generator: LoadGenerator
    do { generator = try LoadGenerator(interface: ifname, clients: clients, window: window, deadlineSeconds: deadline) } catch { fail("\(error)") }
    let result = generator.run()
    print(result.json(label: label))
    exit(result.granted == clients ? 0 : 1)
default:
    fail("unknown mode '\(mode)'")
}

// Runs one Kiln VPN interface from a JSON VPNConfig until SIGTERM or SIGINT, then prints its status.
// Glibc only (no Foundation), like the guest service will be.
import Glibc
import KilnConfig
import KilnVPN

func say(_ text: String, to fd: Int32 = 1) {
    let bytes = Array(text.utf8)
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
}

guard CommandLine.arguments.count == 2 else {
    say("usage: kiln-vpn-bench CONFIG.json\n", to: 2)
    exit(2)
}
let path = CommandLine.arguments[1]
guard let file = fopen(path, "r") else {
    say("kiln-vpn-bench: \(path): \(String(cString: strerror(errno)))\n", to: 2)
    exit(1)
}
var bytes: [UInt8] = []
var chunk = [UInt8](repeating: 0, count: 4096)
while true {
    let n = fread(&chunk, 1, chunk.count, file)
    if n <= 0 { break }
    bytes += chunk[0..<n]
}
fclose(file)

var blocked = sigset_t()
sigemptyset(&blocked)
sigaddset(&blocked, SIGTERM)
sigaddset(&blocked, SIGINT)
pthread_sigmask(SIG_BLOCK, &blocked, nil)
do {
    let config = try KilnJSON.decode(VPNConfig.self, from: bytes)
    let device = try VPNDevice(config: config)
    try device.start()
    say("ready \(device.interfaceName)\n")
    var signal: Int32 = 0
    sigwait(&blocked, &signal)
    device.stop()
    say(device.status())
} catch {
    say("kiln-vpn-bench: \(path): \(error)\n", to: 2)
    exit(1)
}

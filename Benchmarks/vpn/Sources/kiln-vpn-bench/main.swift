// Runs one Kiln VPN interface from a JSON VPNConfig until SIGTERM or SIGINT, then prints its status.
// Glibc only (no Foundation), like the guest service will be.
import Glibc
import KilnConfig
import KilnVPN

guard CommandLine.arguments.count == 2 else {
    fputs("usage: kiln-vpn-bench CONFIG.json\n", stderr)
    exit(2)
}
let path = CommandLine.arguments[1]
guard let file = fopen(path, "r") else {
    fputs("kiln-vpn-bench: \(path): \(String(cString: strerror(errno)))\n", stderr)
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
    print("ready \(device.interfaceName)")
    fflush(stdout)
    var signal: Int32 = 0
    sigwait(&blocked, &signal)
    device.stop()
    print(device.status())
} catch {
    fputs("kiln-vpn-bench: \(path): \(error)\n", stderr)
    exit(1)
}

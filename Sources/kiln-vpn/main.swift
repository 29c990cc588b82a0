// kiln-vpn: the VPN appliance's data plane (KilnVPN's WireGuard over TUN), a guest executable beside kiln-init.
// It links swift-crypto's BoringSSL, which kiln-init must not carry, so it is its own binary and goes into
// only the images that have a `vpn:` section (at /sbin/kiln-vpn). Glibc only, no Foundation.
import Glibc
import KilnConfig
import KilnSystem
import KilnVPN

let usage = """
    usage: kiln-vpn run CONFIG.json     run one interface (kiln-init supervises this)
           kiln-vpn show [INTERFACE]    status of the running interfaces, like `wg show`
           kiln-vpn pubkey              read a base64 private key on stdin, print its public key

    """

func say(_ text: String, to fd: Int32 = 1) {
    let bytes = Array(text.utf8)
    var done = 0
    while done < bytes.count {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, $0.count - done) }
        if n <= 0 { if errno == EINTR { continue }; return }
        done += n
    }
}

let arguments = Array(CommandLine.arguments.dropFirst())
switch arguments.first {
case "run" where arguments.count == 2:
    exit(VPNService.run(configPath: arguments[1]))
case "show" where arguments.count <= 2:
    exit(VPNService.show(interface: arguments.count == 2 ? arguments[1] : nil))
case "pubkey" where arguments.count == 1:
    var input: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 256)
    while input.count < 4096 {
        let n = buffer.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
        if n <= 0 { break }
        input += buffer[0..<n]
    }
    let text = String(decoding: input, as: UTF8.self).filter { !$0.isWhitespace }
    guard let key = Base64.decode(text), key.count == 32 else {
        say("kiln-vpn: stdin is not a base64 32-byte key\n", to: 2)
        exit(2)
    }
    say(Base64.encode(X25519.publicKey(of: key)) + "\n")
    exit(0)
default:
    say(usage, to: 2)
    exit(2)
}

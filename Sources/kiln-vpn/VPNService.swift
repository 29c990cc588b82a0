import CKilnShims
import Glibc
import KilnConfig
import KilnSystem
import KilnVPN

/// `kiln-vpn run` and `kiln-vpn show`: one VPN interface under kiln-init's supervisor, and its status over a
/// control socket in `VPNService.controlDirectory`.
///
/// The runtime (kiln-init's `tuntap` phase) has already created the TUN device as a persistent interface with
/// its addresses and the routes to the peers' allowed IPs; this process attaches to it, so a restart of the
/// service keeps the interface, its addresses and its routes.
enum VPNService {
    static let controlDirectory = "/run/kiln-vpn"

    static func socketPath(_ interface: String) -> String { controlDirectory + "/" + interface + ".sock" }

    static func run(configPath: String) -> Int32 {
        var blocked = sigset_t()
        sigemptyset(&blocked)
        for s in [SIGTERM, SIGINT, SIGPIPE] { sigaddset(&blocked, s) }
        pthread_sigmask(SIG_BLOCK, &blocked, nil)
        let device: VPNDevice
        let control: FileDescriptor
        do {
            let config = try KilnJSON.decode(VPNConfig.self, from: try FileSystem.readFile(configPath))
            device = try VPNDevice(config: config)
            try FileSystem.makeDirectory(controlDirectory, mode: 0o700)
            control = try UnixSocket.listen(socketPath(device.interfaceName))
            try device.start()
        } catch {
            // VPNConfigError and Errno name the field or the call, never a key's value.
            say("kiln-vpn: \(configPath): \(error)\n", to: 2)
            return 1
        }
        say("interface \(device.interfaceName) up, listening on UDP \(device.config.listenPort), \(device.config.peers.count) peer(s)\n")
        Readiness.notify()

        sigdelset(&blocked, SIGPIPE)
        let signals = kiln_signalfd(&blocked, 1)
        var handshakes = device.handshakes()
        while true {
            var fds = [pollfd(fd: signals, events: Int16(POLLIN), revents: 0), pollfd(fd: control.rawValue, events: Int16(POLLIN), revents: 0)]
            _ = poll(&fds, 2, 1000)
            if fds[0].revents != 0 { break }
            if fds[1].revents != 0 { answer(control.rawValue, device) }
            // One line on the console per completed handshake, so the boot log shows the tunnel coming up and,
            // with the time since the one before, each re-key (a session is replaced after 120 s in use).
            let now = device.handshakes()
            for (i, peer) in now.enumerated() where i < handshakes.count && peer.count > handshakes[i].count {
                let previous = handshakes[i].latest
                say("handshake \(peer.count) with peer \(i) (\(device.config.peers[i].publicKey)) completed"
                    + (previous > 0 && peer.latest >= previous ? ", \(peer.latest - previous) s after the previous" : "") + "\n")
            }
            handshakes = now
        }
        device.stop()
        unlink(socketPath(device.interfaceName))
        say(device.status())
        return 0
    }

    /// Serves one control connection: reads the request line (`show`) and writes the status.
    private static func answer(_ listener: Int32, _ device: VPNDevice) {
        let fd = accept(listener, nil, nil)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var buffer = [UInt8](repeating: 0, count: 64)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        let request = n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self).filter { !$0.isWhitespace } : ""
        let reply = request == "show" ? device.status() : "unknown request '\(request)' (try: show)\n"
        let bytes = Array(reply.utf8)
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    static func show(interface: String?) -> Int32 {
        let names: [String]
        if let interface {
            names = [interface]
        } else {
            names = FileSystem.entries(controlDirectory).filter { $0.hasSuffix(".sock") }.map { String($0.dropLast(5)) }.sorted()
        }
        guard !names.isEmpty else {
            say("kiln-vpn: no VPN interface is running (no control socket in \(controlDirectory))\n", to: 2)
            return 1
        }
        var status: Int32 = 0
        for (i, name) in names.enumerated() {
            do {
                say((i > 0 ? "\n" : "") + (try UnixSocket.request(socketPath(name), "show")))
            } catch {
                say("kiln-vpn: \(name): \(error)\n", to: 2)
                status = 1
            }
        }
        return status
    }
}

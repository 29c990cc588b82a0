import CKilnShims
import Glibc
import KilnConfig
import KilnSystem

/// PID 1's loop after boot: child exits (signalfd), service output, console commands and restart timers.
struct EventLoop {
    let supervisor: Supervisor

    /// Returns when a power-off was requested (console `poweroff`, SIGTERM, SIGINT from ctrl-alt-del, SIGUSR2).
    func run() {
        var mask = sigset_t()
        sigemptyset(&mask)
        for s in [SIGCHLD, SIGTERM, SIGINT, SIGUSR2, SIGPWR] { sigaddset(&mask, s) }
        sigprocmask(SIG_BLOCK, &mask, nil)
        let sfd = kiln_signalfd(&mask, 1)
        _ = fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK)
        var console: [UInt8] = []
        supervisor.reap()

        while true {
            var fds = [pollfd(fd: sfd, events: Int16(POLLIN), revents: 0), pollfd(fd: 0, events: Int16(POLLIN), revents: 0)]
            fds += supervisor.outputs.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            let n = poll(&fds, nfds_t(fds.count), supervisor.nextTimeout())
            if n < 0 && errno != EINTR { usleep(100_000) }
            supervisor.restartDue()
            if fds[0].revents != 0 {
                // struct signalfd_siginfo is 128 bytes; its first field is the signal number.
                var info = [UInt8](repeating: 0, count: 128)
                while info.withUnsafeMutableBytes({ read(sfd, $0.baseAddress, 128) }) == 128 {
                    let signo = info.withUnsafeBytes { $0.load(as: UInt32.self) }
                    if signo == UInt32(SIGCHLD) { supervisor.reap() } else { return }
                }
            }
            if fds[1].revents & Int16(POLLIN) != 0 {
                var buf = [UInt8](repeating: 0, count: 512)
                let got = buf.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
                if got > 0 { console += buf[0..<got] }
                while let nl = console.firstIndex(where: { $0 == 0x0A || $0 == 0x0D }) {
                    let command = String(decoding: console[..<nl], as: UTF8.self).trimmingSpaces
                    console.removeSubrange(...nl)
                    if handle(command) { return }
                }
                if console.count > 4096 { console = [] }
            }
            for p in fds.dropFirst(2) where p.revents != 0 { supervisor.drain(p.fd) }
        }
    }

    /// Console commands; returns true when the box should power off.
    func handle(_ command: String) -> Bool {
        switch command {
        case "": return false
        case "poweroff", "kiln poweroff": return true
        case "status", "kiln status":
            for s in supervisor.services {
                Events.emit("status", [("service", .string(s.spec.name)), ("running", .bool(s.running)), ("restarts", .int(Int64(s.restarts)))])
            }
            vpnStatus()
            return false
        case "wanopt", "kiln wanopt":
            WANOptConsole.emitStatus()
            return false
        default:
            let words = command.split(separator: " ").map(String.init)
            if words.count == 3, words[0] == "service", words[1] == "stop" || words[1] == "start" {
                let known = words[1] == "stop" ? supervisor.hold(words[2]) : supervisor.release(words[2])
                if !known { Events.log("no service '\(words[2])'") }
                return false
            }
            Events.log("unknown console command '\(command)' (try: status, wanopt, service stop|start NAME, poweroff)")
            return false
        }
    }
}

extension EventLoop {
    /// Each running VPN interface's `wg show`-like status (what `kiln-vpn show` prints), asked over its control
    /// socket and written to the console as `[vpn] …` lines.
    static let vpnControlDirectory = "/run/kiln-vpn"

    func vpnStatus() {
        guard let dir = opendir(EventLoop.vpnControlDirectory) else { return }
        var sockets: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name.hasSuffix(".sock") { sockets.append(name) }
        }
        closedir(dir)
        for name in sockets.sorted() {
            do {
                let text = try UnixSocket.request(EventLoop.vpnControlDirectory + "/" + name, "show", timeoutMs: 1000)
                for line in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast(text.hasSuffix("\n") ? 1 : 0) {
                    Events.line("[vpn] " + line)
                }
            } catch {
                Events.log("vpn status from \(name): \(error)")
            }
        }
    }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return String(s)
    }
}

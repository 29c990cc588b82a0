import Glibc
import KilnConfig
import KilnDedup

nonisolated(unsafe) private var stopSignal: sig_atomic_t = 0

extension WANOptService {
    /// The entry point of `kiln-init service wanopt [/etc/kiln/wanopt.json]`: loads the config and the key,
    /// installs the interception, serves until SIGTERM or SIGINT. Returns the exit status (1 on a setup error).
    /// `--status [CONFIG]` prints the running service's status instead.
    public static func run(arguments: [String], ready: () -> Void = {}) -> Int32 {
        let log: (String) -> Void = { line in
            let bytes = Array("wanopt: \(line)\n".utf8)
            _ = bytes.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
        }
        let statusOnly = arguments.first == "--status"
        let configPath = (statusOnly ? arguments.dropFirst().first : arguments.first) ?? WANOptConfig.defaultPath
        let config: WANOptConfig
        do { config = try WANOptConfig.load(path: configPath) } catch {
            log("cannot load \(configPath): \(error)")
            return 1
        }
        if statusOnly {
            do {
                let text = try StatusSocket.query(path: config.statusSocket)
                _ = Array(text.utf8).withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
                return 0
            } catch {
                log("\(error)")
                return 1
            }
        }
        do { try Zstd.require() } catch {
            log("\(error)")
            return 1
        }
        stopSignal = 0
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in stopSignal = 1 }
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0
        sigaction(SIGTERM, &action, nil)
        sigaction(SIGINT, &action, nil)
        signal(SIGPIPE, SIG_IGN)
        do {
            let key = try ChannelAuth.loadKey(path: config.keyFile)
            for note in try Interception.install(config) { log(note) }
            var codecs = CodecFactory.passThrough
            if let settings = config.store {
                makeDirectories(settings.path)
                let store: ChunkStore
                do { store = try ChunkStore(directory: settings.path, capacity: settings.capacity) } catch {
                    throw WANOptError("chunk store \(settings.path): \(error)")
                }
                codecs = try .dedup(store: store, averageChunkSize: config.averageChunkSize, compressionLevel: Int32(clamping: config.compressionLevel))
                log("chunk store \(settings.path): \(store.statistics.chunks) chunks, \(store.statistics.bytes) bytes")
            }
            let service = try WANOptService(config: config, key: key, codecs: codecs, log: log)
            log("\(config.name): intercepting TCP on \(config.lan.map(\.description).joined(separator: ", ")) to port \(config.interceptPort)"
                + (config.listen.map { "; channel on \($0)" } ?? "") + (config.peer.map { "; peer \($0)" } ?? ""))
            ready()
            service.serve { stopSignal != 0 }
            log("stopped")
            return 0
        } catch {
            log("cannot start: \(error)")
            return 1
        }
    }
}

extension WANOptConfig {
    /// Reads the compiled config (JSON, written by the builder).
    public static func load(path: String) throws(WANOptError) -> WANOptConfig {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw WANOptError("\(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0, errno == EINTR { continue }
            guard n >= 0 else { throw WANOptError("\(path): \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            bytes += buffer[0..<n]
        }
        do { return try KilnJSON.decode(WANOptConfig.self, from: bytes) } catch {
            throw WANOptError("\(path): \(error)")
        }
    }
}

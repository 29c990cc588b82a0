/// A UDP endpoint (IPv4 or IPv6 address and port) kept in two integers so the data path does not allocate.
public struct Endpoint: Hashable, Sendable, CustomStringConvertible {
    /// Address bytes in network order, packed into two words (IPv4 uses the first four bytes).
    public var high: UInt64
    public var low: UInt64
    public var port: UInt16
    public var isIPv6: Bool

    public init(address: [UInt8], port: UInt16) {
        precondition(address.count == 4 || address.count == 16)
        var bytes = address + [UInt8](repeating: 0, count: 16 - address.count)
        (high, low) = bytes.withUnsafeMutableBytes { ($0.load(as: UInt64.self), $0.load(fromByteOffset: 8, as: UInt64.self)) }
        self.port = port
        isIPv6 = address.count == 16
    }

    public var addressBytes: [UInt8] {
        var pair = (high, low)
        let all = withUnsafeBytes(of: &pair) { Array($0) }
        return isIPv6 ? all : Array(all.prefix(4))
    }

    /// Address then big-endian port: what the cookie value is computed over.
    var cookieInput: [UInt8] { addressBytes + [UInt8(port >> 8), UInt8(port & 0xFF)] }

    public var description: String {
        let a = addressBytes
        if !isIPv6 { return a.map(String.init).joined(separator: ".") + ":\(port)" }
        let groups = stride(from: 0, to: 16, by: 2).map { String(UInt16(a[$0]) << 8 | UInt16(a[$0 + 1]), radix: 16) }
        return "[" + groups.joined(separator: ":") + "]:\(port)"
    }
}

/// A pair of session keys from one handshake, with its indices, send counter and replay window.
public final class Keypair {
    let sendKey: AEADKey
    let receiveKey: AEADKey
    let localIndex: UInt32
    let remoteIndex: UInt32
    let created: UInt64
    let isInitiator: Bool
    let peer: Int
    var sendCounter: UInt64 = 0
    var replay = ReplayWindow()

    init?(send: [UInt8], receive: [UInt8], localIndex: UInt32, remoteIndex: UInt32, created: UInt64, isInitiator: Bool, peer: Int) {
        guard let s = AEADKey(key: send), let r = AEADKey(key: receive) else { return nil }
        sendKey = s
        receiveKey = r
        self.localIndex = localIndex
        self.remoteIndex = remoteIndex
        self.created = created
        self.isInitiator = isInitiator
        self.peer = peer
    }
}

/// Everything the protocol keeps about one peer.
public final class PeerState {
    public let publicKey: [UInt8]
    let presharedKey: [UInt8]
    let staticShared: [UInt8]?
    let mac1Key: [UInt8]
    let cookieKey: AEADKey
    let initialHash: [UInt8]
    public internal(set) var endpoint: Endpoint?
    var lastTimestamp = [UInt8](repeating: 0, count: 12)
    var initiation: (localIndex: UInt32, ephemeral: [UInt8], hash: [UInt8], chainingKey: [UInt8])?
    var current: Keypair?
    var previous: Keypair?
    var next: Keypair?
    public internal(set) var timers: PeerTimers
    var cookie: [UInt8]?
    var cookieReceived: UInt64 = 0
    var lastMAC1: [UInt8]?
    public internal(set) var receivedBytes: UInt64 = 0
    public internal(set) var sentBytes: UInt64 = 0
    /// Wall-clock seconds of the last completed handshake (0: never).
    public internal(set) var lastHandshakeSeconds: UInt64 = 0
    public internal(set) var handshakes: UInt64 = 0

    init(publicKey: [UInt8], presharedKey: [UInt8]?, ownPrivateKey: [UInt8], endpoint: Endpoint?, timers: PeerTimers) {
        self.publicKey = publicKey
        self.presharedKey = presharedKey ?? [UInt8](repeating: 0, count: 32)
        staticShared = X25519.sharedSecret(ownPrivateKey, publicKey)
        mac1Key = BLAKE2s.hash(Noise.labelMAC1, publicKey)
        cookieKey = AEADKey(key: BLAKE2s.hash(Noise.labelCookie, publicKey), xchacha: true)!
        initialHash = BLAKE2s.hash(Noise.identifierHash, publicKey)
        self.endpoint = endpoint
        self.timers = timers
    }
}

enum Noise {
    static let construction = Array("Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s".utf8)
    static let identifier = Array("WireGuard v1 zx2c4 Jason@zx2c4.com".utf8)
    static let labelMAC1 = Array("mac1----".utf8)
    static let labelCookie = Array("cookie--".utf8)
    static let chainingKey = BLAKE2s.hash(construction)
    static let identifierHash = BLAKE2s.hash(chainingKey, identifier)
}

/// What became of one received datagram.
public enum ReceiveResult: Equatable, Sendable {
    case dropped(DropReason)
    /// A handshake or cookie message to send back to the datagram's source.
    case reply([UInt8])
    /// A valid empty transport message.
    case keepalive(peer: Int)
    /// A decrypted IP packet of `length` bytes at offset 16 of the buffer, from `peer`.
    case packet(peer: Int, length: Int)
}

/// What became of one outgoing IP packet.
public enum SendResult: Equatable, Sendable {
    /// The transport message (`length` bytes from the buffer's start) goes to `endpoint`.
    case send(peer: Int, length: Int, endpoint: Endpoint)
    case noRoute
    /// No usable session: a handshake was started (see `outbox`) and the packet dropped.
    case noSession(peer: Int)
}

/// The protocol state machine of one interface: handshakes, cookies, sessions, routing and timers. It does no
/// I/O and reads no clock (times come in as arguments), and it is not thread-safe: the device serialises calls.
public final class ProtocolEngine {
    public let publicKey: [UInt8]
    private let privateKey: [UInt8]
    private let ownMAC1Key: [UInt8]
    private let ownCookieKey: AEADKey
    private var cookieSecret = randomBytes(32)
    private var cookieSecretCreated: UInt64 = 0
    public private(set) var peers: [PeerState] = []
    private var peerByKey: [[UInt8]: Int] = [:]
    private var keypairs: [UInt32: Keypair] = [:]
    private var pendingHandshakes: [UInt32: Int] = [:]
    public private(set) var allowedIPs = AllowedIPs()
    /// Wall clock for TAI64N timestamps: (seconds, nanoseconds) since 1970.
    private let wallClock: () -> (UInt64, UInt32)
    /// Handshake and keepalive messages produced as side effects, for the caller to send: (peer, bytes).
    public var outbox: [(peer: Int, message: [UInt8])] = []
    /// Dropped datagrams per reason (indexed by `DropReason.rawValue`).
    public private(set) var drops = [UInt64](repeating: 0, count: DropReason.allCases.count)
    public var maximumMessage = 65535

    public init(privateKey: [UInt8], wallClock: @escaping () -> (UInt64, UInt32)) {
        self.privateKey = privateKey
        publicKey = X25519.publicKey(of: privateKey)
        ownMAC1Key = BLAKE2s.hash(Noise.labelMAC1, publicKey)
        ownCookieKey = AEADKey(key: BLAKE2s.hash(Noise.labelCookie, publicKey), xchacha: true)!
        self.wallClock = wallClock
    }

    /// Adds a peer and its allowed IPs (address bytes, prefix length); returns its index.
    @discardableResult
    public func addPeer(publicKey: [UInt8], presharedKey: [UInt8]? = nil, endpoint: Endpoint? = nil,
                        allowedIPs prefixes: [([UInt8], Int)], timers: PeerTimers = PeerTimers()) -> Int {
        let index = peers.count
        peers.append(PeerState(publicKey: publicKey, presharedKey: presharedKey, ownPrivateKey: privateKey, endpoint: endpoint, timers: timers))
        peerByKey[publicKey] = index
        for (address, length) in prefixes { allowedIPs.insert(address, prefixLength: length, peer: index) }
        return index
    }

    public var totalDrops: UInt64 { drops.reduce(0, +) }

    @inline(__always) private func drop(_ reason: DropReason) -> ReceiveResult {
        drops[reason.rawValue] &+= 1
        return .dropped(reason)
    }

    private func newIndex() -> UInt32 {
        while true {
            let i = randomUInt32()
            if keypairs[i] == nil && pendingHandshakes[i] == nil { return i }
        }
    }

    // MARK: Handshake

    /// Builds a handshake initiation for `peer` and records it as pending.
    public func createInitiation(peer index: Int, now: UInt64) -> [UInt8]? {
        let peer = peers[index]
        guard let staticShared = peer.staticShared else { return nil }
        if let old = peer.initiation { pendingHandshakes[old.localIndex] = nil }
        let localIndex = newIndex()
        let (ephemeral, ephemeralPublic) = X25519.keypair()
        var ck = BLAKE2s.kdf(1, key: Noise.chainingKey, input: ephemeralPublic)[0]
        var h = BLAKE2s.hash(peer.initialHash, ephemeralPublic)
        guard let es = X25519.sharedSecret(ephemeral, peer.publicKey) else { return nil }
        var kdf = BLAKE2s.kdf(2, key: ck, input: es)
        ck = kdf[0]
        let encryptedStatic = AEADKey(key: kdf[1])!.seal(publicKey, ad: h)
        h = BLAKE2s.hash(h, encryptedStatic)
        kdf = BLAKE2s.kdf(2, key: ck, input: staticShared)
        ck = kdf[0]
        let (seconds, nanoseconds) = wallClock()
        let timestamp = AEADKey(key: kdf[1])!.seal(TAI64N.encode(seconds: seconds, nanoseconds: nanoseconds), ad: h)
        h = BLAKE2s.hash(h, timestamp)
        var message: [UInt8] = [1, 0, 0, 0] + le32(localIndex) + ephemeralPublic + encryptedStatic + timestamp
        appendMACs(&message, peer: peer, now: now)
        peer.initiation = (localIndex, ephemeral, h, ck)
        pendingHandshakes[localIndex] = index
        peer.timers.initiationSent(now: now, jitter: UInt64(randomUInt32()) * 1_000_000)
        return message
    }

    private func appendMACs(_ message: inout [UInt8], peer: PeerState, now: UInt64) {
        let mac1 = BLAKE2s.mac(key: peer.mac1Key, message)
        message += mac1
        peer.lastMAC1 = mac1
        if let cookie = peer.cookie, now &- peer.cookieReceived < 120_000_000_000 {
            message += BLAKE2s.mac(key: cookie, message)
        } else {
            message += [UInt8](repeating: 0, count: 16)
        }
    }

    /// The cookie value a source address must present in mac2 (secret rotated every two minutes).
    private func cookieValue(for source: Endpoint, now: UInt64) -> [UInt8] {
        if now &- cookieSecretCreated >= 120_000_000_000 || cookieSecretCreated == 0 {
            cookieSecret = randomBytes(32)
            cookieSecretCreated = max(now, 1)
        }
        return BLAKE2s.mac(key: cookieSecret, source.cookieInput)
    }

    /// Checks mac1 and, under load, mac2; returns nil to go on, or the result that ends processing.
    private func checkMACs(_ m: UnsafeRawBufferPointer, source: Endpoint, underLoad: Bool, now: UInt64) -> ReceiveResult? {
        let size = m.count
        let mac1 = BLAKE2s.mac(key: ownMAC1Key, m[0..<(size - 32)])
        guard mac1.withUnsafeBytes({ constantTimeEqual($0, UnsafeRawBufferPointer(rebasing: m[(size - 32)..<(size - 16)])) }) else {
            return drop(.badMAC1)
        }
        guard underLoad else { return nil }
        let mac2 = BLAKE2s.mac(key: cookieValue(for: source, now: now), m[0..<(size - 16)])
        if mac2.withUnsafeBytes({ constantTimeEqual($0, UnsafeRawBufferPointer(rebasing: m[(size - 16)..<size])) }) { return nil }
        // Answer with a cookie the sender can put in mac2 next time.
        drops[DropReason.cookieSent.rawValue] &+= 1
        let nonce = randomBytes(24)
        let encrypted = ownCookieKey.sealX(cookieValue(for: source, now: now), nonce: nonce, ad: mac1)
        return .reply([3, 0, 0, 0] + Array(m[4..<8]) + nonce + encrypted)
    }

    /// Processes one datagram from `source`, decrypting transport data in place. `underLoad` makes handshake
    /// messages without a valid mac2 get a cookie reply instead of an answer.
    public func receive(_ buffer: UnsafeMutableRawBufferPointer, length: Int, from source: Endpoint, now: UInt64, underLoad: Bool = false) -> ReceiveResult {
        let m = UnsafeRawBufferPointer(rebasing: buffer[0..<length])
        switch classify(m, maximumLength: maximumMessage) {
        case .failure(let reason): return drop(reason)
        case .success(.transport): return receiveTransport(buffer, length: length, from: source, now: now)
        case .success(.initiation):
            if let result = checkMACs(m, source: source, underLoad: underLoad, now: now) { return result }
            return consumeInitiation(m, from: source, now: now)
        case .success(.response):
            if let result = checkMACs(m, source: source, underLoad: underLoad, now: now) { return result }
            return consumeResponse(m, from: source, now: now)
        case .success(.cookieReply):
            return consumeCookieReply(m, now: now)
        }
    }

    private func consumeInitiation(_ m: UnsafeRawBufferPointer, from source: Endpoint, now: UInt64) -> ReceiveResult {
        let ephemeralPublic = Array(m[8..<40])
        var ck = BLAKE2s.kdf(1, key: Noise.chainingKey, input: ephemeralPublic)[0]
        var h = BLAKE2s.hash(Noise.identifierHash, publicKey)
        h = BLAKE2s.hash(h, ephemeralPublic)
        guard let es = X25519.sharedSecret(privateKey, ephemeralPublic) else { return drop(.decryptFailed) }
        var kdf = BLAKE2s.kdf(2, key: ck, input: es)
        ck = kdf[0]
        let encryptedStatic = Array(m[40..<88])
        guard let peerKey = AEADKey(key: kdf[1])!.open(encryptedStatic, ad: h) else { return drop(.decryptFailed) }
        h = BLAKE2s.hash(h, encryptedStatic)
        guard let index = peerByKey[peerKey] else { return drop(.unknownPeer) }
        let peer = peers[index]
        guard let staticShared = peer.staticShared else { return drop(.unknownPeer) }
        kdf = BLAKE2s.kdf(2, key: ck, input: staticShared)
        ck = kdf[0]
        let encryptedTimestamp = Array(m[88..<116])
        guard let timestamp = AEADKey(key: kdf[1])!.open(encryptedTimestamp, ad: h) else { return drop(.decryptFailed) }
        h = BLAKE2s.hash(h, encryptedTimestamp)
        guard TAI64N.isAfter(timestamp, peer.lastTimestamp) else { return drop(.staleTimestamp) }
        peer.lastTimestamp = timestamp
        peer.endpoint = source

        // Response.
        let remoteIndex = readLE32(m, 4)
        let localIndex = newIndex()
        let (ephemeral, responderPublic) = X25519.keypair()
        ck = BLAKE2s.kdf(1, key: ck, input: responderPublic)[0]
        h = BLAKE2s.hash(h, responderPublic)
        guard let ee = X25519.sharedSecret(ephemeral, ephemeralPublic),
              let se = X25519.sharedSecret(ephemeral, peer.publicKey) else { return drop(.decryptFailed) }
        ck = BLAKE2s.kdf(1, key: ck, input: ee)[0]
        ck = BLAKE2s.kdf(1, key: ck, input: se)[0]
        kdf = BLAKE2s.kdf(3, key: ck, input: peer.presharedKey)
        ck = kdf[0]
        h = BLAKE2s.hash(h, kdf[1])
        let empty = AEADKey(key: kdf[2])!.seal([], ad: h)
        var message: [UInt8] = [2, 0, 0, 0] + le32(localIndex) + le32(remoteIndex) + responderPublic + empty
        appendMACs(&message, peer: peer, now: now)
        let keys = BLAKE2s.kdf(2, key: ck, input: [])
        guard let keypair = Keypair(send: keys[1], receive: keys[0], localIndex: localIndex, remoteIndex: remoteIndex,
                                    created: now, isInitiator: false, peer: index) else { return drop(.decryptFailed) }
        if let old = peer.next { keypairs[old.localIndex] = nil }
        peer.next = keypair
        keypairs[localIndex] = keypair
        peer.timers.sessionDerived(now: now, asInitiator: false)
        peer.timers.packetSent(now: now)
        completed(peer, now: now)
        return .reply(message)
    }

    private func consumeResponse(_ m: UnsafeRawBufferPointer, from source: Endpoint, now: UInt64) -> ReceiveResult {
        let receiver = readLE32(m, 8)
        guard let index = pendingHandshakes[receiver], let state = peers[index].initiation, state.localIndex == receiver else {
            return drop(.noHandshake)
        }
        let peer = peers[index]
        let responderPublic = Array(m[12..<44])
        var ck = BLAKE2s.kdf(1, key: state.chainingKey, input: responderPublic)[0]
        var h = BLAKE2s.hash(state.hash, responderPublic)
        guard let ee = X25519.sharedSecret(state.ephemeral, responderPublic),
              let se = X25519.sharedSecret(privateKey, responderPublic) else { return drop(.decryptFailed) }
        ck = BLAKE2s.kdf(1, key: ck, input: ee)[0]
        ck = BLAKE2s.kdf(1, key: ck, input: se)[0]
        let kdf = BLAKE2s.kdf(3, key: ck, input: peer.presharedKey)
        ck = kdf[0]
        h = BLAKE2s.hash(h, kdf[1])
        guard AEADKey(key: kdf[2])!.open(Array(m[44..<60]), ad: h) != nil else { return drop(.decryptFailed) }
        let keys = BLAKE2s.kdf(2, key: ck, input: [])
        guard let keypair = Keypair(send: keys[0], receive: keys[1], localIndex: receiver, remoteIndex: readLE32(m, 4),
                                    created: now, isInitiator: true, peer: index) else { return drop(.decryptFailed) }
        pendingHandshakes[receiver] = nil
        peer.initiation = nil
        if let old = peer.previous { keypairs[old.localIndex] = nil }
        if let old = peer.next { keypairs[old.localIndex] = nil; peer.next = nil }
        peer.previous = peer.current
        peer.current = keypair
        keypairs[receiver] = keypair
        peer.endpoint = source
        peer.timers.sessionDerived(now: now, asInitiator: true)
        peer.timers.packetReceived(now: now)
        completed(peer, now: now)
        // Confirm the session to the responder at once.
        guard let keepalive = keepalive(peer: index, now: now) else { return drop(.expiredKey) }
        return .reply(keepalive)
    }

    private func completed(_ peer: PeerState, now: UInt64) {
        peer.handshakes &+= 1
        peer.lastHandshakeSeconds = wallClock().0
    }

    private func consumeCookieReply(_ m: UnsafeRawBufferPointer, now: UInt64) -> ReceiveResult {
        let receiver = readLE32(m, 4)
        let index: Int
        if let i = pendingHandshakes[receiver] { index = i } else if let k = keypairs[receiver] { index = k.peer } else { return drop(.unknownIndex) }
        let peer = peers[index]
        guard let mac1 = peer.lastMAC1,
              let cookie = peer.cookieKey.openX(Array(m[32..<64]), nonce: Array(m[8..<32]), ad: mac1) else { return drop(.decryptFailed) }
        peer.cookie = cookie
        peer.cookieReceived = now
        peer.lastMAC1 = nil
        return .keepalive(peer: index)
    }

    // MARK: Transport

    private func receiveTransport(_ buffer: UnsafeMutableRawBufferPointer, length: Int, from source: Endpoint, now: UInt64) -> ReceiveResult {
        let m = UnsafeRawBufferPointer(buffer)
        guard let keypair = keypairs[readLE32(m, 4)] else { return drop(.unknownIndex) }
        let peer = peers[keypair.peer]
        guard peer.timers.isUsable(keyCreated: keypair.created, now: now) else { return drop(.expiredKey) }
        let counter = readLE64(m, 8)
        guard let plain = keypair.receiveKey.open(counter: counter, buffer: buffer.baseAddress! + 16, length: length - 16) else {
            return drop(.decryptFailed)
        }
        guard keypair.replay.accept(counter) else { return drop(.replayed) }
        if keypair === peer.next {
            if let old = peer.previous { keypairs[old.localIndex] = nil }
            peer.previous = peer.current
            peer.current = keypair
            peer.next = nil
        }
        peer.endpoint = source
        peer.receivedBytes &+= UInt64(length)
        if peer.timers.shouldRekeyOnReceive(now: now) && !peer.timers.handshakeInProgress,
           let initiation = createInitiation(peer: keypair.peer, now: now) {
            outbox.append((keypair.peer, initiation))
        }
        if plain == 0 {
            peer.timers.packetReceived(now: now)
            return .keepalive(peer: keypair.peer)
        }
        // The IP header's own length, without the sender's padding.
        let packet = UnsafeRawBufferPointer(rebasing: m[16..<(16 + plain)])
        var ipLength = 0
        switch packet[0] >> 4 {
        case 4 where plain >= 20: ipLength = Int(packet[2]) << 8 | Int(packet[3])
        case 6 where plain >= 40: ipLength = 40 + (Int(packet[4]) << 8 | Int(packet[5]))
        default: return drop(.sourceNotAllowed)
        }
        guard ipLength <= plain, ipLength >= 20,
              let sourceAddress = AllowedIPs.address(of: UnsafeRawBufferPointer(rebasing: packet[0..<ipLength]), source: true),
              allowedIPs.lookup(sourceAddress) == keypair.peer else { return drop(.sourceNotAllowed) }
        peer.timers.dataReceived(now: now)
        return .packet(peer: keypair.peer, length: ipLength)
    }

    /// Encrypts the IP packet of `length` bytes at offset 16 of `buffer` in place, writing the transport header
    /// before it and padding after it; `buffer` needs `16 + length + 15 + 16` bytes.
    public func send(_ buffer: UnsafeMutableRawBufferPointer, length: Int, now: UInt64) -> SendResult {
        let packet = UnsafeRawBufferPointer(rebasing: buffer[16..<(16 + length)])
        guard let destination = AllowedIPs.address(of: packet, source: false), let index = allowedIPs.lookup(destination) else {
            return .noRoute
        }
        return seal(buffer, length: length, peer: index, now: now, isData: true)
    }

    private func seal(_ buffer: UnsafeMutableRawBufferPointer, length: Int, peer index: Int, now: UInt64, isData: Bool) -> SendResult {
        let peer = peers[index]
        guard let keypair = peer.current, let endpoint = peer.endpoint,
              peer.timers.isUsable(keyCreated: keypair.created, now: now),
              keypair.sendCounter < ReplayWindow.rejectAfterMessages else {
            if !peer.timers.handshakeInProgress, let initiation = createInitiation(peer: index, now: now) {
                outbox.append((index, initiation))
            }
            return .noSession(peer: index)
        }
        let padded = (length + 15) & ~15
        for i in length..<padded { buffer[16 + i] = 0 }
        let counter = keypair.sendCounter
        keypair.sendCounter += 1
        buffer.storeBytes(of: UInt32(4).littleEndian, toByteOffset: 0, as: UInt32.self)
        buffer.storeBytes(of: keypair.remoteIndex.littleEndian, toByteOffset: 4, as: UInt32.self)
        buffer.storeBytes(of: counter.littleEndian, toByteOffset: 8, as: UInt64.self)
        _ = keypair.sendKey.seal(counter: counter, buffer: buffer.baseAddress! + 16, length: padded)
        let total = 16 + padded + 16
        peer.sentBytes &+= UInt64(total)
        if isData { peer.timers.dataSent(now: now) } else { peer.timers.packetSent(now: now) }
        if peer.timers.shouldRekeyOnSend(now: now, counter: counter) && !peer.timers.handshakeInProgress,
           let initiation = createInitiation(peer: index, now: now) {
            outbox.append((index, initiation))
        }
        return .send(peer: index, length: total, endpoint: endpoint)
    }

    /// An empty transport message for `peer` (nil without a session).
    public func keepalive(peer index: Int, now: UInt64) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 32)
        let result = buffer.withUnsafeMutableBytes { seal($0, length: 0, peer: index, now: now, isData: false) }
        if case .send = result { return buffer }
        return nil
    }

    /// Runs every peer's timers; messages to send land in `outbox`.
    public func tick(now: UInt64) {
        for index in peers.indices {
            let peer = peers[index]
            let actions = peer.timers.tick(now: now)
            if actions.contains(.zeroKeys) {
                for k in [peer.current, peer.previous, peer.next] { if let k { keypairs[k.localIndex] = nil } }
                peer.current = nil; peer.previous = nil; peer.next = nil
            }
            if actions.contains(.giveUp), let pending = peer.initiation {
                pendingHandshakes[pending.localIndex] = nil
                peer.initiation = nil
            }
            if actions.contains(.sendInitiation), peer.endpoint != nil, let initiation = createInitiation(peer: index, now: now) {
                outbox.append((index, initiation))
            }
            if actions.contains(.sendKeepalive), let message = keepalive(peer: index, now: now) {
                outbox.append((index, message))
            }
        }
    }
}

/// The protocol's timing constants, in nanoseconds; tests and benchmarks may shorten them.
public struct TimerConstants: Sendable, Equatable {
    public var rekeyAfterTime: UInt64 = 120_000_000_000
    public var rejectAfterTime: UInt64 = 180_000_000_000
    public var rekeyAttemptTime: UInt64 = 90_000_000_000
    public var rekeyTimeout: UInt64 = 5_000_000_000
    public var keepaliveTimeout: UInt64 = 10_000_000_000
    public var rekeyAfterMessages: UInt64 = 1 << 60
    /// Largest random extra delay added to a handshake retry.
    public var maxJitter: UInt64 = 333_000_000

    public init() {}
}

/// What a peer's timers ask for at a tick.
public struct TimerActions: OptionSet, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// Send (or re-send) a handshake initiation.
    public static let sendInitiation = TimerActions(rawValue: 1)
    /// Send an empty transport message.
    public static let sendKeepalive = TimerActions(rawValue: 2)
    /// Forget all session keys (nothing valid has been negotiated for 3 × reject-after-time).
    public static let zeroKeys = TimerActions(rawValue: 4)
    /// Stop retrying the handshake (rekey-attempt-time ran out).
    public static let giveUp = TimerActions(rawValue: 8)
}

/// One peer's timer state as a pure value: events come in with the time they happened at (monotonic
/// nanoseconds), and `tick` says what is due. Nothing here reads a clock.
public struct PeerTimers: Sendable {
    public var constants: TimerConstants
    /// Persistent keepalive interval (0: off).
    public var persistentKeepalive: UInt64

    /// When the current session key was made, and whether this side initiated it.
    public private(set) var keyCreated: UInt64?
    public private(set) var keyIsInitiator = false
    private var retryAt: UInt64?
    private var attemptsSince: UInt64?
    private var passiveKeepaliveAt: UInt64?
    private var newHandshakeAt: UInt64?
    private var persistentAt: UInt64?
    private var zeroKeysAt: UInt64?

    public init(constants: TimerConstants = TimerConstants(), persistentKeepalive: UInt64 = 0) {
        self.constants = constants
        self.persistentKeepalive = persistentKeepalive
    }

    /// A handshake initiation went out; `jitter` is a random value below `constants.maxJitter`.
    public mutating func initiationSent(now: UInt64, jitter: UInt64) {
        if attemptsSince == nil { attemptsSince = now }
        retryAt = now + constants.rekeyTimeout + jitter % max(constants.maxJitter, 1)
        packetSent(now: now)
    }

    /// A session key was derived (either side).
    public mutating func sessionDerived(now: UInt64, asInitiator: Bool) {
        keyCreated = now
        keyIsInitiator = asInitiator
        retryAt = nil
        attemptsSince = nil
        zeroKeysAt = now + 3 * constants.rejectAfterTime
    }

    /// Any authenticated packet went out (data, keepalive or handshake).
    public mutating func packetSent(now: UInt64) {
        passiveKeepaliveAt = nil
        if persistentKeepalive > 0 { persistentAt = now + persistentKeepalive }
    }

    /// A data packet (not a keepalive) went out: expect an answer within keepalive + rekey timeout.
    public mutating func dataSent(now: UInt64) {
        packetSent(now: now)
        if newHandshakeAt == nil { newHandshakeAt = now + constants.keepaliveTimeout + constants.rekeyTimeout }
    }

    /// Any authenticated packet arrived.
    public mutating func packetReceived(now: UInt64) {
        newHandshakeAt = nil
    }

    /// A data packet (not a keepalive) arrived: answer with a keepalive if nothing else goes out soon.
    public mutating func dataReceived(now: UInt64) {
        packetReceived(now: now)
        if passiveKeepaliveAt == nil { passiveKeepaliveAt = now + constants.keepaliveTimeout }
    }

    /// Whether sending with the current key should first start a new handshake (initiator, old or worn key).
    public func shouldRekeyOnSend(now: UInt64, counter: UInt64) -> Bool {
        guard let created = keyCreated else { return true }
        if counter >= constants.rekeyAfterMessages { return true }
        return keyIsInitiator && now &- created >= constants.rekeyAfterTime
    }

    /// Whether a received packet on an old initiator key should trigger a handshake before the key expires.
    public func shouldRekeyOnReceive(now: UInt64) -> Bool {
        guard let created = keyCreated, keyIsInitiator else { return false }
        return now &- created >= constants.rejectAfterTime - constants.keepaliveTimeout - constants.rekeyTimeout
    }

    /// Whether a key made at `created` may still carry packets.
    public func isUsable(keyCreated created: UInt64, now: UInt64) -> Bool {
        now &- created < constants.rejectAfterTime
    }

    /// True while a handshake is outstanding (initiation sent, no session yet).
    public var handshakeInProgress: Bool { retryAt != nil }

    /// What is due at `now`. Retries are re-armed by the `initiationSent` call the caller makes in response.
    public mutating func tick(now: UInt64) -> TimerActions {
        var actions: TimerActions = []
        if let at = retryAt, now >= at {
            if let since = attemptsSince, now &- since >= constants.rekeyAttemptTime {
                retryAt = nil
                attemptsSince = nil
                newHandshakeAt = nil
                actions.insert(.giveUp)
            } else {
                actions.insert(.sendInitiation)
            }
        }
        if let at = newHandshakeAt, now >= at {
            newHandshakeAt = nil
            if retryAt == nil { actions.insert(.sendInitiation) }
        }
        if let at = passiveKeepaliveAt, now >= at {
            passiveKeepaliveAt = nil
            actions.insert(.sendKeepalive)
        }
        if let at = persistentAt, now >= at {
            persistentAt = now + persistentKeepalive
            actions.insert(.sendKeepalive)
        }
        if let at = zeroKeysAt, now >= at {
            zeroKeysAt = nil
            keyCreated = nil
            actions.insert(.zeroKeys)
        }
        return actions
    }
}

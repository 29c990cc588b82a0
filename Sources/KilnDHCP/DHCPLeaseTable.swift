import KilnConfig

/// One address's record. An address has at most one record; a client owns at most one address.
public struct DHCPLease: Equatable, Sendable {
    public enum State: String, Sendable, Codable {
        /// Reserved by an OFFER until `expiry`.
        case offered
        /// Granted by an ACK until `expiry`.
        case bound
        /// Given back by RELEASE or run out; remembered so the client gets the same address again.
        case released
        /// Refused by a client (DECLINE: someone else uses it); out of the pool until `expiry`.
        case declined
    }
    /// Option 61 or htype+chaddr; empty for a declined address.
    public var clientKey: [UInt8]
    public var mac: MACAddress?
    public var address: IPv4Address
    /// Wall-clock seconds.
    public var expiry: Int64
    public var state: State
    public var hostname: String?

    /// Holds its address against other clients at `now`.
    public func isActive(at now: Int64) -> Bool { state != .released && expiry > now }
}

/// The lease table of one pool: who holds which address, with the pool and static leases it must respect.
/// Pure value type; the engine decides, this keeps the two indexes consistent.
public struct DHCPLeaseTable: Sendable {
    public let pool: IPv4Range
    /// MAC → fixed address (from the manifest).
    public let staticLeases: [MACAddress: IPv4Address]
    let staticAddresses: Set<IPv4Address>
    public private(set) var byAddress: [IPv4Address: DHCPLease] = [:]
    public private(set) var byClient: [[UInt8]: IPv4Address] = [:]
    private var cursor: UInt32 = 0

    public init(pool: IPv4Range, staticLeases: [DHCPStaticLease]) {
        self.pool = pool
        var m: [MACAddress: IPv4Address] = [:]
        for s in staticLeases where m[s.mac] == nil { m[s.mac] = s.address }
        self.staticLeases = m
        staticAddresses = Set(m.values)
    }

    public var leases: [DHCPLease] { byAddress.values.sorted { $0.address < $1.address } }
    public func lease(for client: [UInt8]) -> DHCPLease? { byClient[client].flatMap { byAddress[$0] } }

    /// True when `address` may be given to `client` (with MAC `mac`) at `now`.
    public func isAvailable(_ address: IPv4Address, to client: [UInt8], mac: MACAddress?, at now: Int64) -> Bool {
        if let mac, let fixed = staticLeases[mac] {
            guard address == fixed else { return false }
        } else {
            guard pool.contains(address), !staticAddresses.contains(address) else { return false }
        }
        guard let current = byAddress[address] else { return true }
        if current.state == .declined { return !current.isActive(at: now) }
        return current.clientKey == client || !current.isActive(at: now)
    }

    /// Picks an address for a client: its static one, its previous one, the one it asked for, else a free one.
    /// Returns nil when the pool is exhausted.
    public mutating func choose(for client: [UInt8], mac: MACAddress?, requested: IPv4Address?, at now: Int64) -> IPv4Address? {
        if let mac, let fixed = staticLeases[mac] {
            return isAvailable(fixed, to: client, mac: mac, at: now) ? fixed : nil
        }
        if let previous = byClient[client], isAvailable(previous, to: client, mac: mac, at: now) { return previous }
        if let r = requested, isAvailable(r, to: client, mac: mac, at: now) { return r }
        let size = UInt32(pool.count)
        // First pass: never-used addresses, from a rotating cursor. Second: addresses whose record lapsed,
        // the longest-lapsed first, so recently released addresses stay with their clients as long as possible.
        for step in 0..<size {
            let a = IPv4Address(pool.lower.value + (cursor &+ step) % size)
            if byAddress[a] == nil, !staticAddresses.contains(a) {
                cursor = (cursor &+ step &+ 1) % size
                return a
            }
        }
        var best: DHCPLease?
        for l in byAddress.values where pool.contains(l.address) && !staticAddresses.contains(l.address) && !l.isActive(at: now) {
            if let b = best, b.expiry <= l.expiry { continue }
            best = l
        }
        return best?.address
    }

    /// Records `address` for `client`, dropping the client's old record and the address's old owner.
    public mutating func assign(_ address: IPv4Address, to client: [UInt8], mac: MACAddress?, state: DHCPLease.State,
                                expiry: Int64, hostname: String?) {
        if let old = byClient[client], old != address { byAddress[old] = nil }
        if let previous = byAddress[address], previous.clientKey != client, !previous.clientKey.isEmpty {
            byClient[previous.clientKey] = nil
        }
        byAddress[address] = DHCPLease(clientKey: client, mac: mac, address: address, expiry: expiry, state: state, hostname: hostname)
        byClient[client] = address
    }

    /// Marks the client's record released at `now` (kept, so it gets the address back later).
    public mutating func release(client: [UInt8], at now: Int64) {
        guard let a = byClient[client], var l = byAddress[a] else { return }
        l.state = .released; l.expiry = min(l.expiry, now)
        byAddress[a] = l
    }

    /// Takes `address` out of service until `until`, forgetting its client.
    public mutating func decline(_ address: IPv4Address, until: Int64) {
        if let previous = byAddress[address], !previous.clientKey.isEmpty { byClient[previous.clientKey] = nil }
        byAddress[address] = DHCPLease(clientKey: [], mac: nil, address: address, expiry: until, state: .declined, hostname: nil)
    }

    /// Drops a client's unconfirmed offer (it chose another server).
    public mutating func withdrawOffer(client: [UInt8]) {
        guard let a = byClient[client], byAddress[a]?.state == .offered else { return }
        byAddress[a] = nil; byClient[client] = nil
    }

    /// Ends what ran out at `now`: lapsed offers and declines are forgotten, lapsed bindings become released.
    /// Returns the bindings that expired.
    public mutating func expire(at now: Int64) -> [DHCPLease] {
        var expired: [DHCPLease] = []
        for (a, l) in byAddress where l.expiry <= now {
            switch l.state {
            case .offered:
                byAddress[a] = nil
                if byClient[l.clientKey] == a { byClient[l.clientKey] = nil }
            case .declined: byAddress[a] = nil
            case .bound:
                var r = l; r.state = .released
                byAddress[a] = r
                expired.append(l)
            case .released: break
            }
        }
        return expired
    }

    /// Inserts a record read from the lease file; false (and no change) when it conflicts with the table or pool.
    mutating func restore(_ lease: DHCPLease) -> Bool {
        guard lease.state != .offered, byAddress[lease.address] == nil else { return false }
        if lease.state == .declined {
            guard pool.contains(lease.address) else { return false }
            byAddress[lease.address] = lease
            return true
        }
        guard byClient[lease.clientKey] == nil, !lease.clientKey.isEmpty else { return false }
        if let mac = lease.mac, let fixed = staticLeases[mac] {
            guard fixed == lease.address else { return false }
        } else {
            guard pool.contains(lease.address), !staticAddresses.contains(lease.address) else { return false }
        }
        byAddress[lease.address] = lease
        byClient[lease.clientKey] = lease.address
        return true
    }

    /// Broken invariants, empty when the table is sound: every address in the pool or a static lease of its MAC,
    /// one address per client, one client per address, both indexes agreeing.
    public func invariantViolations() -> [String] {
        var out: [String] = []
        for (a, l) in byAddress {
            if l.address != a { out.append("record for \(a) names \(l.address)") }
            if let mac = l.mac, let fixed = staticLeases[mac], fixed == a {
            } else if !pool.contains(a) || staticAddresses.contains(a) {
                out.append("\(a) is held outside the pool")
            }
            if l.state == .declined { if !l.clientKey.isEmpty { out.append("declined \(a) has a client") }; continue }
            if byClient[l.clientKey] != a { out.append("\(a)'s client does not map back to it") }
        }
        for (c, a) in byClient where byAddress[a]?.clientKey != c { out.append("client maps to \(a) owned by another") }
        return out
    }
}

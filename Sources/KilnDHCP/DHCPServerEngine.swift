import KilnConfig

/// Where a reply goes (RFC 2131 §4.1, "the server sends ... to").
public enum DHCPDestination: Equatable, Sendable {
    /// 255.255.255.255:68 on the interface: broadcast bit set, NAKs, or clients with no address.
    case broadcast
    /// UDP to a configured client, `ciaddr`:68.
    case unicast(IPv4Address)
    /// A link-layer unicast to `chaddr` with IP destination `yiaddr`: the client has no address yet and did not
    /// ask for broadcast, so the frame is built by hand (an ordinary UDP send would need ARP to answer).
    case hardware(MACAddress, IPv4Address)
}

/// A reply and where to send it.
public struct DHCPReply: Equatable, Sendable {
    public var packet: DHCPPacket
    public var destination: DHCPDestination
}

/// The server state machine for one interface (RFC 2131 §4.3). Pure: time is passed in, nothing is sent;
/// `handle` returns the reply, and `leasesChanged` tells the edge to persist the table.
public struct DHCPServerEngine {
    public let config: DHCPInterfaceConfig
    public let serverAddress: IPv4Address
    public let subnet: IPv4Subnet
    public private(set) var table: DHCPLeaseTable
    /// Set when a binding changed since `markPersisted()`.
    public private(set) var leasesChanged = false
    /// Receives one line per decision worth a log entry.
    public var log: (String) -> Void

    public init(config: DHCPInterfaceConfig, log: @escaping (String) -> Void = { _ in }) throws(DHCPConfigError) {
        guard let subnet = config.subnet else {
            throw DHCPConfigError(issues: [DHCPSpecIssue(path: config.name.value, message: "address \(config.address) is not IPv4")])
        }
        self.config = config; self.subnet = subnet; serverAddress = subnet.address; self.log = log
        table = DHCPLeaseTable(pool: config.spec.pool, staticLeases: config.spec.staticLeases)
    }

    public mutating func markPersisted() { leasesChanged = false }
    mutating func replaceTable(_ t: DHCPLeaseTable) { table = t }

    /// Lapses what ran out; call about once a second.
    public mutating func tick(now: Int64) {
        for l in table.expire(at: now) {
            log("lease of \(l.address) to \(l.mac.map(\.description) ?? hex(l.clientKey)) expired")
            leasesChanged = true
        }
    }

    /// Answers one client message, or returns nil when RFC 2131 says to stay silent.
    public mutating func handle(_ request: DHCPPacket, now: Int64) -> DHCPReply? {
        guard request.op == DHCPPacket.bootRequest, let type = request.messageType else { return nil }
        guard request.htype == 1, request.hlen == 6, let mac = request.clientMAC else { return nil }
        guard request.giaddr.value == 0 else {
            log("\(type) from \(mac) via relay \(request.giaddr) ignored: relayed requests are not served")
            return nil
        }
        switch type {
        case .discover: return discover(request, mac: mac, now: now)
        case .request: return requestMessage(request, mac: mac, now: now)
        case .decline: decline(request, mac: mac, now: now); return nil
        case .release: release(request, mac: mac, now: now); return nil
        case .inform: return inform(request)
        case .offer, .ack, .nak: return nil
        }
    }

    // MARK: Messages

    private mutating func discover(_ r: DHCPPacket, mac: MACAddress, now: Int64) -> DHCPReply? {
        let client = r.clientKey
        guard let address = table.choose(for: client, mac: mac, requested: r.requestedAddress, at: now) else {
            log(table.staticLeases[mac] != nil
                ? "DISCOVER from \(mac): its static address \(table.staticLeases[mac].map(\.description) ?? "") is unavailable (declined), no offer"
                : "DISCOVER from \(mac): pool \(config.spec.pool) exhausted, no offer")
            return nil
        }
        if table.lease(for: client)?.state != .bound || table.lease(for: client)?.address != address {
            table.assign(address, to: client, mac: mac, state: .offered, expiry: now + Int64(config.offerSeconds), hostname: r.hostname)
        }
        log("DISCOVER from \(mac) -> OFFER \(address)")
        return reply(to: r, type: .offer, yiaddr: address, withLease: true)
    }

    private mutating func requestMessage(_ r: DHCPPacket, mac: MACAddress, now: Int64) -> DHCPReply? {
        let client = r.clientKey
        if let sid = r.serverIdentifier {
            // SELECTING (§4.3.2): the client answers an OFFER; another server's id means it chose that one.
            guard sid == serverAddress else { table.withdrawOffer(client: client); return nil }
            guard let want = r.requestedAddress, r.ciaddr.value == 0 || r.ciaddr == want else {
                return nak(r, mac: mac, "REQUEST in SELECTING without a requested address")
            }
            return grant(r, want, mac: mac, now: now, state: "SELECTING")
        }
        if let want = r.requestedAddress, r.ciaddr.value == 0 {
            // INIT-REBOOT: the client checks an address it remembers. Wrong network or someone else's → NAK.
            guard subnet.contains(want) else { return nak(r, mac: mac, "requested \(want) is not on \(config.name)") }
            return grant(r, want, mac: mac, now: now, state: "INIT-REBOOT")
        }
        guard r.ciaddr.value != 0 else { return nil }
        // RENEWING (unicast) or REBINDING (broadcast): ciaddr holds the address to extend.
        guard subnet.contains(r.ciaddr) else { return nil }
        return grant(r, r.ciaddr, mac: mac, now: now, state: r.isBroadcast ? "REBINDING" : "RENEWING")
    }

    private mutating func grant(_ r: DHCPPacket, _ address: IPv4Address, mac: MACAddress, now: Int64, state: String) -> DHCPReply {
        let client = r.clientKey
        guard table.isAvailable(address, to: client, mac: mac, at: now) else {
            return nak(r, mac: mac, "\(address) is not available to \(mac) (\(state))")
        }
        if let fixed = table.staticLeases[mac], fixed != address {
            return nak(r, mac: mac, "\(mac) has static address \(fixed), not \(address)")
        }
        table.assign(address, to: client, mac: mac, state: .bound, expiry: now + Int64(config.spec.lease), hostname: r.hostname)
        leasesChanged = true
        log("REQUEST (\(state)) from \(mac) -> ACK \(address) for \(config.spec.lease) s")
        return reply(to: r, type: .ack, yiaddr: address, withLease: true)
    }

    private mutating func nak(_ r: DHCPPacket, mac: MACAddress, _ why: String) -> DHCPReply {
        log("REQUEST from \(mac) -> NAK: \(why)")
        var p = header(for: r)
        p.messageType = .nak
        p.serverIdentifier = serverAddress
        p.message = why
        p.clientIdentifier = r.clientIdentifier
        // §4.1: a NAK goes out broadcast unless relayed, since the client's address is in doubt.
        return DHCPReply(packet: p, destination: .broadcast)
    }

    private mutating func decline(_ r: DHCPPacket, mac: MACAddress, now: Int64) {
        guard r.serverIdentifier == nil || r.serverIdentifier == serverAddress, let a = r.requestedAddress else { return }
        guard table.lease(for: r.clientKey)?.address == a else {
            log("DECLINE from \(mac) for \(a) ignored: not its lease")
            return
        }
        table.decline(a, until: now + Int64(config.declineSeconds))
        leasesChanged = true
        log("DECLINE from \(mac): \(a) is in use on the link, out of the pool for \(config.declineSeconds) s")
    }

    private mutating func release(_ r: DHCPPacket, mac: MACAddress, now: Int64) {
        guard r.serverIdentifier == nil || r.serverIdentifier == serverAddress,
              let l = table.lease(for: r.clientKey), l.address == r.ciaddr, l.state == .bound else { return }
        table.release(client: r.clientKey, at: now)
        leasesChanged = true
        log("RELEASE from \(mac) of \(l.address)")
    }

    private func inform(_ r: DHCPPacket) -> DHCPReply? {
        var reply = reply(to: r, type: .ack, yiaddr: IPv4Address(0), withLease: false)
        reply.packet.ciaddr = r.ciaddr
        if r.ciaddr.value != 0 { reply.destination = .unicast(r.ciaddr) }
        return reply
    }

    // MARK: Building replies

    private func header(for r: DHCPPacket) -> DHCPPacket {
        var p = DHCPPacket()
        p.op = DHCPPacket.bootReply
        p.htype = r.htype; p.hlen = r.hlen; p.xid = r.xid; p.flags = r.flags; p.giaddr = r.giaddr; p.chaddr = r.chaddr
        return p
    }

    private func reply(to r: DHCPPacket, type: DHCPMessageType, yiaddr: IPv4Address, withLease: Bool) -> DHCPReply {
        var p = header(for: r)
        p.messageType = type
        p.yiaddr = yiaddr
        if type == .ack { p.ciaddr = r.ciaddr }
        p.serverIdentifier = serverAddress
        p.clientIdentifier = r.clientIdentifier   // RFC 6842
        let spec = config.spec
        if withLease {
            let lease = UInt32(spec.lease)
            p.leaseTime = lease; p.renewalTime = lease / 2; p.rebindingTime = UInt32(UInt64(lease) * 7 / 8)
        }
        let asked = r.parameterRequestList
        func wants(_ code: UInt8) -> Bool { asked?.contains(code) ?? true }
        p.subnetMask = subnet.mask
        p.broadcastAddress = subnet.broadcast
        if let router = spec.router { p.routers = [router] }
        p.dnsServers = spec.dns
        p.domainName = spec.domain
        if let m = spec.mtu, wants(DHCPOptionCode.interfaceMTU) { p.interfaceMTU = UInt16(m) }
        if !spec.routes.isEmpty, asked?.contains(DHCPOptionCode.classlessStaticRoutes) == true {
            // RFC 3442 §2: a client that takes option 121 ignores option 3, so the default route goes in too.
            var routes = spec.routes.compactMap { r -> DHCPClasslessRoute? in
                guard case let .v4(d) = r.to.network else { return nil }
                return DHCPClasslessRoute(destination: d, prefixLength: r.to.prefixLength, router: r.via)
            }
            if let router = spec.router { routes.append(DHCPClasslessRoute(destination: IPv4Address(0), prefixLength: 0, router: router)) }
            p.classlessRoutes = routes
        }
        return DHCPReply(packet: p, destination: destination(for: r, yiaddr: yiaddr))
    }

    /// RFC 2131 §4.1, fourth paragraph of "DHCP server behavior".
    private func destination(for r: DHCPPacket, yiaddr: IPv4Address) -> DHCPDestination {
        if r.ciaddr.value != 0 { return .unicast(r.ciaddr) }
        if r.isBroadcast || yiaddr.value == 0 { return .broadcast }
        guard let mac = r.clientMAC else { return .broadcast }
        return .hardware(mac, yiaddr)
    }
}

func hex(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef")
    var s = ""
    for b in bytes { s.append(digits[Int(b >> 4)]); s.append(digits[Int(b & 15)]) }
    return s
}

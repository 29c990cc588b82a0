import KilnSystem

/// The high-level rtnetlink calls kiln-init makes, each replacing the `ip` command in its comment.
///
/// Sends one request at a time with a fresh sequence number and reads replies until the kernel's
/// acknowledgement (or NLMSG_DONE for a dump). Errors name the operation and the interface.
public final class NetlinkSession {
    let transport: any NetlinkTransport
    private var sequence: UInt32
    var receiveBuffer: [UInt8]

    /// A session over `socket`; `bufferSize` bounds one reply datagram (the kernel sends at most 32 KiB).
    public init(socket: any NetlinkTransport, bufferSize: Int = 64 << 10) {
        self.transport = socket
        self.sequence = UInt32(truncatingIfNeeded: MonotonicClock.nanoseconds() / 1000)
        self.receiveBuffer = [UInt8](repeating: 0, count: bufferSize)
    }

    func nextSequence() -> UInt32 {
        sequence &+= 1
        return sequence
    }

    /// A session over a new rtnetlink socket in the calling thread's network namespace.
    public convenience init() throws(NetlinkError) {
        do {
            self.init(socket: try RouteNetlinkSocket())
        } catch {
            throw NetlinkError(operation: "open rtnetlink socket", reason: .transport(error))
        }
    }

    // MARK: Links

    /// `ip link show`
    public func links() throws(NetlinkError) -> [Link] {
        try dump(LinkRequest.dump(), operation: "list links").map { (message) throws(NetlinkError) in
            try decode(operation: "list links") { () throws(NetlinkDecodeError) in try Link(message) }
        }
    }

    /// `ip link show dev NAME`; a missing link is ENODEV.
    public func link(named name: String) throws(NetlinkError) -> Link {
        let operation = "find link"
        let replies = try execute(LinkRequest.get(name: name), operation: operation, interface: name)
        guard let reply = replies.first(where: { $0.type == MessageType.newLink }) else {
            throw NetlinkError(operation: operation, interface: name, reason: .malformedReply("no RTM_NEWLINK"))
        }
        return try decode(operation: operation, interface: name) { () throws(NetlinkDecodeError) in try Link(reply) }
    }

    /// `ip link show` of one index; a missing link is ENODEV.
    public func link(index: Int32) throws(NetlinkError) -> Link {
        let operation = "find link"
        let replies = try execute(LinkRequest.get(index: index), operation: operation, interface: "ifindex \(index)")
        guard let reply = replies.first(where: { $0.type == MessageType.newLink }) else {
            throw NetlinkError(operation: operation, interface: "ifindex \(index)", reason: .malformedReply("no RTM_NEWLINK"))
        }
        return try decode(operation: operation) { () throws(NetlinkDecodeError) in try Link(reply) }
    }

    /// `ip link set dev X up`
    public func setUp(index: Int32) throws(NetlinkError) {
        try acknowledge(LinkRequest.set(index: index, up: true), operation: "set up", index: index)
    }

    /// `ip link set dev X down`
    public func setDown(index: Int32) throws(NetlinkError) {
        try acknowledge(LinkRequest.set(index: index, up: false), operation: "set down", index: index)
    }

    /// `ip link set dev X mtu N`
    public func setMTU(index: Int32, mtu: UInt32) throws(NetlinkError) {
        try acknowledge(LinkRequest.set(index: index, mtu: mtu), operation: "set mtu \(mtu)", index: index)
    }

    /// `ip link set dev X name NEW` (bring it down first; most kernels refuse to rename a link that is up)
    public func rename(index: Int32, to name: String) throws(NetlinkError) {
        try acknowledge(LinkRequest.rename(index: index, to: name), operation: "rename to \(name)", index: index)
    }

    /// `ip link add link PARENT name NAME type vlan id ID`
    public func addVLAN(parent: Int32, id: UInt16, name: String) throws(NetlinkError) {
        try acknowledge(LinkRequest.addVLAN(parent: parent, id: id, name: name), operation: "add VLAN \(id) \(name)", index: parent)
    }

    /// `ip link add NAME type bridge`
    public func addBridge(name: String) throws(NetlinkError) {
        try addLink(name: name, kind: "bridge")
    }

    /// `ip link add NAME type dummy`
    public func addDummy(name: String) throws(NetlinkError) {
        try addLink(name: name, kind: "dummy")
    }

    /// `ip link add NAME type KIND`
    public func addLink(name: String, kind: String) throws(NetlinkError) {
        try acknowledge(LinkRequest.add(name: name, kind: kind), operation: "add \(kind) \(name)", index: nil)
    }

    /// `ip link add NAME type veth peer name PEER`
    public func addVeth(name: String, peer: String) throws(NetlinkError) {
        try acknowledge(LinkRequest.addVeth(name: name, peer: peer), operation: "add veth \(name) peer \(peer)", index: nil)
    }

    /// `ip link set dev X master BR`
    public func setMaster(index: Int32, master: Int32) throws(NetlinkError) {
        try acknowledge(LinkRequest.set(index: index, master: master), operation: "set master ifindex \(master)", index: index)
    }

    /// `ip link set dev X nomaster`
    public func clearMaster(index: Int32) throws(NetlinkError) {
        try acknowledge(LinkRequest.set(index: index, master: 0), operation: "set nomaster", index: index)
    }

    /// `ip link del dev X`
    public func deleteLink(index: Int32) throws(NetlinkError) {
        try acknowledge(LinkRequest.delete(index: index), operation: "delete link", index: index)
    }

    // MARK: Addresses

    /// `ip addr show` (all interfaces, or one)
    public func addresses(index: Int32? = nil) throws(NetlinkError) -> [InterfaceAddress] {
        let all = try dump(AddressRequest.dump(), operation: "list addresses").map { (message) throws(NetlinkError) in
            try decode(operation: "list addresses") { () throws(NetlinkDecodeError) in try InterfaceAddress(message) }
        }
        return index.map { wanted in all.filter { $0.index == wanted } } ?? all
    }

    /// `ip addr add A/P [brd +] dev X`
    public func addAddress(index: Int32, bytes: [UInt8], prefix: UInt8) throws(NetlinkError) {
        let operation = "add address \(AddressText.format(bytes, prefix: prefix))"
        try acknowledge(AddressRequest.add(index: index, address: bytes, prefixLength: prefix), operation: operation, index: index)
    }

    /// `ip addr del A/P dev X`
    public func deleteAddress(index: Int32, bytes: [UInt8], prefix: UInt8) throws(NetlinkError) {
        let operation = "delete address \(AddressText.format(bytes, prefix: prefix))"
        try acknowledge(AddressRequest.delete(index: index, address: bytes, prefixLength: prefix), operation: operation, index: index)
    }

    // MARK: Routes

    /// `ip route show table all`
    public func routes(family: UInt8 = AddressFamily.unspecified) throws(NetlinkError) -> [Route] {
        try dump(RouteRequest.dump(family: family), operation: "list routes").map { (message) throws(NetlinkError) in
            try decode(operation: "list routes") { () throws(NetlinkDecodeError) in try Route(message) }
        }
    }

    /// `ip route add DST/P [via GW] [dev X] proto static [metric M]`; destination nil is `default`.
    /// The family comes from the destination or the gateway.
    public func addRoute(
        destination: [UInt8]?, prefix: UInt8, gateway: [UInt8]? = nil, oif: Int32? = nil, metric: UInt32? = nil
    ) throws(NetlinkError) {
        let route = try makeRoute(destination, prefix, gateway, oif, metric, verb: "add")
        try acknowledge(RouteRequest.add(route), operation: "add route \(describe(route))", index: oif)
    }

    /// `ip route del DST/P [via GW] [dev X] proto static [metric M]`
    public func deleteRoute(
        destination: [UInt8]?, prefix: UInt8, gateway: [UInt8]? = nil, oif: Int32? = nil, metric: UInt32? = nil
    ) throws(NetlinkError) {
        let route = try makeRoute(destination, prefix, gateway, oif, metric, verb: "delete")
        try acknowledge(RouteRequest.delete(route), operation: "delete route \(describe(route))", index: oif)
    }

    /// `ip route add local 0.0.0.0/0 dev lo table TABLE` (`ip -6 route add local ::/0 …` for IPv6)
    public func addLocalDefaultRoute(family: UInt8, interface: Int32, table: UInt32) throws(NetlinkError) {
        let what = family == AddressFamily.inet6 ? "::/0" : "0.0.0.0/0"
        try acknowledge(RouteRequest.addLocalDefault(family: family, interface: interface, table: table),
                        operation: "add local route \(what) table \(table)", index: interface)
    }

    // MARK: Rules

    /// `ip [-6] rule add fwmark MARK lookup TABLE [pref PRIORITY]`
    public func addFirewallMarkRule(family: UInt8, mark: UInt32, table: UInt32, priority: UInt32? = nil) throws(NetlinkError) {
        try acknowledge(RuleRequest.addFirewallMark(family: family, mark: mark, table: table, priority: priority),
                        operation: "add rule fwmark \(mark) lookup \(table)", index: nil)
    }

    /// `ip [-6] rule del fwmark MARK lookup TABLE [pref PRIORITY]`
    public func deleteFirewallMarkRule(family: UInt8, mark: UInt32, table: UInt32, priority: UInt32? = nil) throws(NetlinkError) {
        try acknowledge(RuleRequest.deleteFirewallMark(family: family, mark: mark, table: table, priority: priority),
                        operation: "delete rule fwmark \(mark) lookup \(table)", index: nil)
    }

    private func makeRoute(
        _ destination: [UInt8]?, _ prefix: UInt8, _ gateway: [UInt8]?, _ oif: Int32?, _ metric: UInt32?, verb: String
    ) throws(NetlinkError) -> Route {
        guard let family = AddressFamily.of(destination ?? gateway ?? []) else {
            throw NetlinkError(operation: "\(verb) route", reason: .invalidArgument("a route needs a 4- or 16-byte destination or gateway"))
        }
        return Route(family: family, destination: destination, prefixLength: prefix, gateway: gateway, outputInterface: oif, metric: metric)
    }

    private func describe(_ route: Route) -> String {
        var text = route.destinationText
        if let gateway = route.gateway { text += " via \(AddressText.format(gateway))" }
        if let metric = route.metric { text += " metric \(metric)" }
        return text
    }
}

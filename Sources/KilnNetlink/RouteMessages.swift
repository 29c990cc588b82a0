/// `struct rtmsg`: the fixed header of route messages (12 bytes).
public struct RouteInfoHeader: Equatable, Sendable {
    public static let size = 12
    public var family: UInt8
    public var destinationLength: UInt8 = 0
    public var sourceLength: UInt8 = 0
    public var tos: UInt8 = 0
    public var table: UInt8 = RouteValue.tableMain
    public var `protocol`: UInt8 = RouteValue.protocolStatic
    public var scope: UInt8 = RouteValue.scopeUniverse
    public var type: UInt8 = RouteValue.typeUnicast
    public var flags: UInt32 = 0

    public init(family: UInt8) {
        self.family = family
    }

    public func encoded() -> [UInt8] {
        var bytes = [family, destinationLength, sourceLength, tos, table, `protocol`, scope, type]
        bytes.appendLittleEndian(flags)
        return bytes
    }

    public init(decoding payload: [UInt8]) throws(NetlinkDecodeError) {
        guard payload.count >= Self.size else { throw NetlinkDecodeError("rtmsg of \(payload.count) bytes") }
        family = payload[0]
        destinationLength = payload[1]
        sourceLength = payload[2]
        tos = payload[3]
        table = payload[4]
        `protocol` = payload[5]
        scope = payload[6]
        type = payload[7]
        flags = payload.littleEndianUInt32(at: 8)
    }
}

/// What a route says; used both to build RTM_NEWROUTE / RTM_DELROUTE and to describe dumped routes.
public struct Route: Equatable, Sendable {
    public var family: UInt8
    /// nil for a default route.
    public var destination: [UInt8]?
    public var prefixLength: UInt8
    public var gateway: [UInt8]?
    public var outputInterface: Int32?
    /// RTA_PRIORITY, the metric.
    public var metric: UInt32?
    public var table: UInt32 = UInt32(RouteValue.tableMain)
    public var `protocol`: UInt8 = RouteValue.protocolStatic
    public var scope: UInt8 = RouteValue.scopeUniverse
    public var type: UInt8 = RouteValue.typeUnicast

    public init(
        family: UInt8, destination: [UInt8]?, prefixLength: UInt8, gateway: [UInt8]? = nil,
        outputInterface: Int32? = nil, metric: UInt32? = nil
    ) {
        self.family = family
        self.destination = destination
        self.prefixLength = prefixLength
        self.gateway = gateway
        self.outputInterface = outputInterface
        self.metric = metric
        scope = gateway == nil ? RouteValue.scopeLink : RouteValue.scopeUniverse
    }

    /// `10.8.0.0/16` or `default`.
    public var destinationText: String {
        guard let destination, prefixLength > 0 else { return "default" }
        return AddressText.format(destination, prefix: prefixLength)
    }

    /// Decodes an RTM_NEWROUTE message.
    public init(_ message: NetlinkMessage) throws(NetlinkDecodeError) {
        let header = try RouteInfoHeader(decoding: message.payload)
        let attributes = try NetlinkAttribute.decodeAll(message.payload.dropFirst(RouteInfoHeader.size))
        family = header.family
        prefixLength = header.destinationLength
        destination = attributes.first(RouteAttribute.destination)?.value
        gateway = attributes.first(RouteAttribute.gateway)?.value
        outputInterface = attributes.first(RouteAttribute.outputInterface)?.u32.map { Int32(bitPattern: $0) }
        metric = attributes.first(RouteAttribute.priority)?.u32
        table = attributes.first(RouteAttribute.table)?.u32 ?? UInt32(header.table)
        `protocol` = header.protocol
        scope = header.scope
        type = header.type
    }
}

/// RTM_*ROUTE requests as pure values, in the main table with protocol static.
public enum RouteRequest {
    /// `ip route show table all` (one family or both)
    public static func dump(family: UInt8 = AddressFamily.unspecified) -> NetlinkMessage {
        var header = RouteInfoHeader(family: family)
        header.table = 0
        header.protocol = 0
        header.type = 0
        return NetlinkMessage(
            type: MessageType.getRoute, flags: MessageFlags.request | MessageFlags.dump, payload: header.encoded())
    }

    /// `ip route add DST/P [via GW] [dev X] proto static [metric M]`; scope link without a gateway.
    public static func add(_ route: Route) throws(NetlinkError) -> NetlinkMessage {
        let operation = "add route \(route.destinationText)"
        return NetlinkMessage(
            type: MessageType.newRoute,
            flags: MessageFlags.request | MessageFlags.ack | MessageFlags.exclusive | MessageFlags.create,
            payload: try encode(route, scope: route.scope, type: route.type, operation: operation))
    }

    /// `ip route del DST/P [via GW] [dev X] proto static [metric M]` (scope and type left as wildcards)
    public static func delete(_ route: Route) throws(NetlinkError) -> NetlinkMessage {
        let operation = "delete route \(route.destinationText)"
        return NetlinkMessage(
            type: MessageType.deleteRoute, flags: MessageFlags.request | MessageFlags.ack,
            payload: try encode(route, scope: RouteValue.scopeNowhere, type: RouteValue.typeUnspecified, operation: operation))
    }

    private static func encode(_ route: Route, scope: UInt8, type: UInt8, operation: String) throws(NetlinkError) -> [UInt8] {
        let size = route.family == AddressFamily.inet ? 4 : route.family == AddressFamily.inet6 ? 16 : 0
        func check(_ bytes: [UInt8]?, _ what: String) throws(NetlinkError) {
            guard let bytes, bytes.count != size else { return }
            throw NetlinkError(operation: operation, reason: .invalidArgument("\(what) has \(bytes.count) bytes, family needs \(size)"))
        }
        guard size > 0 else { throw NetlinkError(operation: operation, reason: .invalidArgument("family \(route.family) is not IPv4 or IPv6")) }
        try check(route.destination, "destination")
        try check(route.gateway, "gateway")
        guard Int(route.prefixLength) <= size * 8 else {
            throw NetlinkError(operation: operation, reason: .invalidArgument("prefix length \(route.prefixLength) is over \(size * 8)"))
        }
        var header = RouteInfoHeader(family: route.family)
        header.destinationLength = route.destination == nil ? 0 : route.prefixLength
        header.table = route.table < 256 ? UInt8(route.table) : 0
        header.protocol = route.protocol
        header.scope = scope
        header.type = type
        var attributes: [NetlinkAttribute] = []
        if let destination = route.destination, route.prefixLength > 0 {
            attributes.append(.init(type: RouteAttribute.destination, value: destination))
        }
        if let gateway = route.gateway { attributes.append(.init(type: RouteAttribute.gateway, value: gateway)) }
        if let metric = route.metric { attributes.append(.u32(RouteAttribute.priority, metric)) }
        if let oif = route.outputInterface { attributes.append(.u32(RouteAttribute.outputInterface, UInt32(bitPattern: oif))) }
        if route.table >= 256 { attributes.append(.u32(RouteAttribute.table, route.table)) }
        return header.encoded() + attributes.encoded()
    }
}

/// `struct fib_rule_hdr`: the fixed header of policy-routing rule messages (12 bytes).
public struct RuleHeader: Equatable, Sendable {
    public static let size = 12
    public var family: UInt8
    public var destinationLength: UInt8 = 0
    public var sourceLength: UInt8 = 0
    public var tos: UInt8 = 0
    public var table: UInt8 = 0
    public var action: UInt8 = RuleValue.actionToTable
    public var flags: UInt32 = 0

    public init(family: UInt8) { self.family = family }

    public func encoded() -> [UInt8] {
        // res1 and res2 sit between table and action.
        var bytes = [family, destinationLength, sourceLength, tos, table, 0, 0, action]
        bytes.appendLittleEndian(flags)
        return bytes
    }
}

/// `FRA_*` rule attributes and `FR_ACT_*` actions from <linux/fib_rules.h>.
public enum RuleValue {
    public static let attributeTable: UInt16 = 15
    public static let attributeFirewallMark: UInt16 = 10
    public static let attributePriority: UInt16 = 6
    public static let actionUnspecified: UInt8 = 0
    public static let actionToTable: UInt8 = 1
}

/// RTM_NEWRULE / RTM_DELRULE requests: the policy routing that sends marked packets to a table.
public enum RuleRequest {
    /// `ip [-6] rule add fwmark MARK lookup TABLE [pref PRIORITY]`. Without a priority the kernel picks one
    /// below the last rule's, so adding the same rule twice yields two rules; with one, the second add is EEXIST.
    public static func addFirewallMark(family: UInt8, mark: UInt32, table: UInt32, priority: UInt32? = nil) -> NetlinkMessage {
        NetlinkMessage(
            type: MessageType.newRule,
            flags: MessageFlags.request | MessageFlags.ack | MessageFlags.exclusive | MessageFlags.create,
            payload: encode(family: family, mark: mark, table: table, priority: priority, action: RuleValue.actionToTable))
    }

    /// `ip [-6] rule del fwmark MARK lookup TABLE [pref PRIORITY]`
    public static func deleteFirewallMark(family: UInt8, mark: UInt32, table: UInt32, priority: UInt32? = nil) -> NetlinkMessage {
        NetlinkMessage(
            type: MessageType.deleteRule, flags: MessageFlags.request | MessageFlags.ack,
            payload: encode(family: family, mark: mark, table: table, priority: priority, action: RuleValue.actionUnspecified))
    }

    private static func encode(family: UInt8, mark: UInt32, table: UInt32, priority: UInt32?, action: UInt8) -> [UInt8] {
        var header = RuleHeader(family: family)
        header.table = table < 256 ? UInt8(table) : 0
        header.action = action
        var attributes: [NetlinkAttribute] = []
        if table >= 256 { attributes.append(.u32(RuleValue.attributeTable, table)) }
        attributes.append(.u32(RuleValue.attributeFirewallMark, mark))
        if let priority { attributes.append(.u32(RuleValue.attributePriority, priority)) }
        return header.encoded() + attributes.encoded()
    }
}

extension RouteRequest {
    /// `ip route add local 0.0.0.0/0 dev lo table TABLE` (or `ip -6 route add local ::/0 …`): every address is
    /// local in that table, so a packet routed by it is delivered to a socket on this host (TPROXY's companion).
    public static func addLocalDefault(family: UInt8, interface: Int32, table: UInt32) throws(NetlinkError) -> NetlinkMessage {
        let size = family == AddressFamily.inet ? 4 : family == AddressFamily.inet6 ? 16 : 0
        guard size > 0 else {
            throw NetlinkError(operation: "add local default route", reason: .invalidArgument("family \(family) is not IPv4 or IPv6"))
        }
        var header = RouteInfoHeader(family: family)
        header.table = table < 256 ? UInt8(table) : 0
        header.protocol = RouteValue.protocolBoot
        // iproute2 gives IPv4 local routes host scope; IPv6 routes carry no scope.
        header.scope = family == AddressFamily.inet ? RouteValue.scopeHost : RouteValue.scopeUniverse
        header.type = RouteValue.typeLocal
        var attributes: [NetlinkAttribute] = [.init(type: RouteAttribute.destination, value: [UInt8](repeating: 0, count: size))]
        if table >= 256 { attributes.append(.u32(RouteAttribute.table, table)) }
        attributes.append(.u32(RouteAttribute.outputInterface, UInt32(bitPattern: interface)))
        return NetlinkMessage(
            type: MessageType.newRoute,
            flags: MessageFlags.request | MessageFlags.ack | MessageFlags.exclusive | MessageFlags.create,
            payload: header.encoded() + attributes.encoded())
    }
}

// Numbers from <linux/netlink.h>, <linux/rtnetlink.h>, <linux/if_link.h>, <linux/if_addr.h>: stable kernel ABI.

/// Netlink message types (`nlmsg_type`) for the control messages and the rtnetlink requests Kiln sends.
public enum MessageType {
    public static let noop: UInt16 = 1
    public static let error: UInt16 = 2
    public static let done: UInt16 = 3
    public static let newLink: UInt16 = 16
    public static let deleteLink: UInt16 = 17
    public static let getLink: UInt16 = 18
    public static let newAddress: UInt16 = 20
    public static let deleteAddress: UInt16 = 21
    public static let getAddress: UInt16 = 22
    public static let newRoute: UInt16 = 24
    public static let deleteRoute: UInt16 = 25
    public static let getRoute: UInt16 = 26
    public static let newRule: UInt16 = 32
    public static let deleteRule: UInt16 = 33
}

/// `nlmsg_flags` bits.
public enum MessageFlags {
    public static let request: UInt16 = 0x1
    public static let multi: UInt16 = 0x2
    public static let ack: UInt16 = 0x4
    public static let dumpInterrupted: UInt16 = 0x10
    public static let dump: UInt16 = 0x300
    public static let replace: UInt16 = 0x100
    public static let exclusive: UInt16 = 0x200
    public static let create: UInt16 = 0x400
    /// In an NLMSG_ERROR: the echoed request was cut to its header.
    public static let capped: UInt16 = 0x100
    /// In an NLMSG_ERROR: extended-ack attributes follow the echoed request.
    public static let ackTLVs: UInt16 = 0x200
}

/// Address families as they appear in rtnetlink headers.
public enum AddressFamily {
    public static let unspecified: UInt8 = 0
    public static let inet: UInt8 = 2
    public static let inet6: UInt8 = 10
    public static let packet: UInt8 = 17

    /// AF_INET for 4 bytes, AF_INET6 for 16, nil otherwise.
    public static func of(_ address: [UInt8]) -> UInt8? {
        switch address.count {
        case 4: inet
        case 16: inet6
        default: nil
        }
    }
}

/// `IFLA_*` link attributes.
public enum LinkAttribute {
    public static let address: UInt16 = 1
    public static let broadcast: UInt16 = 2
    public static let name: UInt16 = 3
    public static let mtu: UInt16 = 4
    public static let link: UInt16 = 5
    public static let master: UInt16 = 10
    public static let operationalState: UInt16 = 16
    public static let linkInfo: UInt16 = 18
    public static let extendedMask: UInt16 = 29
    /// Inside IFLA_LINKINFO.
    public static let infoKind: UInt16 = 1
    public static let infoData: UInt16 = 2
    /// Inside IFLA_INFO_DATA of a VLAN.
    public static let vlanID: UInt16 = 1
    /// Inside IFLA_INFO_DATA of a veth: a whole ifinfomsg plus attributes for the peer.
    public static let vethPeer: UInt16 = 1
}

/// `IFF_*` interface flags.
public enum InterfaceFlags {
    public static let up: UInt32 = 0x1
    public static let broadcast: UInt32 = 0x2
    public static let loopback: UInt32 = 0x8
    public static let running: UInt32 = 0x40
    public static let lowerUp: UInt32 = 0x10000
}

/// `IFA_*` address attributes.
public enum AddressAttribute {
    public static let address: UInt16 = 1
    public static let local: UInt16 = 2
    public static let label: UInt16 = 3
    public static let broadcast: UInt16 = 4
}

/// `RTA_*` route attributes.
public enum RouteAttribute {
    public static let destination: UInt16 = 1
    public static let source: UInt16 = 2
    public static let outputInterface: UInt16 = 4
    public static let gateway: UInt16 = 5
    public static let priority: UInt16 = 6
    public static let preferredSource: UInt16 = 7
    public static let table: UInt16 = 15
}

/// Route table, protocol, scope and type values (`RT_TABLE_*`, `RTPROT_*`, `RT_SCOPE_*`, `RTN_*`).
public enum RouteValue {
    public static let tableMain: UInt8 = 254
    public static let protocolKernel: UInt8 = 2
    public static let protocolBoot: UInt8 = 3
    public static let protocolStatic: UInt8 = 4
    public static let scopeUniverse: UInt8 = 0
    public static let scopeLink: UInt8 = 253
    public static let scopeHost: UInt8 = 254
    public static let scopeNowhere: UInt8 = 255
    public static let typeUnspecified: UInt8 = 0
    public static let typeUnicast: UInt8 = 1
    public static let typeLocal: UInt8 = 2
}

/// `NLMSGERR_ATTR_*` extended-ack attributes.
public enum ExtendedAckAttribute {
    public static let message: UInt16 = 1
    public static let offset: UInt16 = 2
}

import Testing
@testable import KilnNetlink

/// Each encoder against the bytes `ip` sent for the same command (see GoldenFixtures.swift).
@Suite struct GoldenRequestTests {
    static func v4(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) -> [UInt8] { [a, b, c, d] }
    static let db8: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 12)

    static func v6(_ tail: [(Int, UInt8)]) -> [UInt8] {
        var bytes = db8
        for (i, b) in tail { bytes[i] = b }
        return bytes
    }

    static let cases: [(String, @Sendable () throws -> NetlinkMessage)] = [
        ("addDummy", { try LinkRequest.add(name: "d1", kind: "dummy") }),
        ("addBridge", { try LinkRequest.add(name: "br1", kind: "bridge") }),
        ("addVLAN", { try LinkRequest.addVLAN(parent: 3, id: 10, name: "d0.10") }),
        ("addVeth", { try LinkRequest.addVeth(name: "v0", peer: "v1") }),
        ("setUp", { LinkRequest.set(index: 3, up: true) }),
        ("setDown", { LinkRequest.set(index: 3, up: false) }),
        ("setMTU", { LinkRequest.set(index: 3, mtu: 1400) }),
        ("rename", { try LinkRequest.rename(index: 2, to: "lan1") }),
        ("setMaster", { LinkRequest.set(index: 3, master: 4) }),
        ("noMaster", { LinkRequest.set(index: 3, master: 0) }),
        ("deleteLink", { LinkRequest.delete(index: 7) }),
        ("getLinks", { LinkRequest.dump() }),
        ("getLinkByName", { try LinkRequest.get(name: "lo") }),
        ("getLinkIndex", { LinkRequest.get(index: 2) }),
        ("addAddressV4", { try AddressRequest.add(index: 3, address: v4(10, 0, 1, 1), prefixLength: 24) }),
        ("addAddressV6", { try AddressRequest.add(index: 3, address: v6([(15, 1)]), prefixLength: 64) }),
        ("deleteAddressV4", { try AddressRequest.delete(index: 3, address: v4(10, 0, 1, 1), prefixLength: 24) }),
        ("addRouteDevice", {
            try RouteRequest.add(Route(family: 2, destination: v4(10, 9, 0, 0), prefixLength: 16, outputInterface: 3, metric: 50))
        }),
        ("addRouteGateway", {
            try RouteRequest.add(Route(
                family: 2, destination: v4(10, 8, 0, 0), prefixLength: 16, gateway: v4(10, 0, 0, 254), outputInterface: 3, metric: 100))
        }),
        ("addRouteDefault", {
            try RouteRequest.add(Route(family: 2, destination: nil, prefixLength: 0, gateway: v4(10, 0, 0, 254), outputInterface: 3, metric: 10))
        }),
        ("addRouteV6", {
            try RouteRequest.add(Route(
                family: 10, destination: v6([(5, 1)]), prefixLength: 48, gateway: v6([(15, 0xfe)]), outputInterface: 3, metric: 20))
        }),
        ("addRuleFwmark", { RuleRequest.addFirewallMark(family: 2, mark: 1, table: 100) }),
        ("addRuleFwmarkPriority", { RuleRequest.addFirewallMark(family: 2, mark: 0x7810, table: 78, priority: 100) }),
        ("addRuleFwmarkV6", { RuleRequest.addFirewallMark(family: 10, mark: 1, table: 100) }),
        ("deleteRuleFwmark", { RuleRequest.deleteFirewallMark(family: 2, mark: 1, table: 100) }),
        ("addRouteLocalDefault", { try RouteRequest.addLocalDefault(family: 2, interface: 1, table: 100) }),
        ("addRouteLocalDefaultV6", { try RouteRequest.addLocalDefault(family: 10, interface: 1, table: 100) }),
        ("deleteRoute", {
            try RouteRequest.delete(Route(family: 2, destination: v4(10, 9, 0, 0), prefixLength: 16, outputInterface: 3, metric: 50))
        }),
    ]

    @Test(arguments: cases.map(\.0)) func encoderMatchesIP(_ name: String) throws {
        let golden = try #require(Golden.requests[name], "no fixture \(name)")
        let build = try #require(Self.cases.first { $0.0 == name }?.1)
        let encoded = try build().encoded()
        #expect(hex(encoded) == golden.hex, "\(golden.command)")
    }

    @Test func everyFixtureHasAnEncoder() {
        #expect(Set(Golden.requests.keys) == Set(Self.cases.map(\.0)))
    }

    @Test func fixturesDecodeAsTheyWereSent() throws {
        // The fixtures parse back through the decoder: one message each, lengths consistent, attributes valid.
        for (name, fixture) in Golden.requests {
            let messages = try NetlinkMessage.decodeAll(bytes(hex: fixture.hex))
            #expect(messages.count == 1, "\(name)")
            #expect(messages.first?.encoded() == bytes(hex: fixture.hex), "\(name)")
        }
    }
}

func hex(_ bytes: [UInt8]) -> String {
    bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
}

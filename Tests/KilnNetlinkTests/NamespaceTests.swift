import Foundation
import Glibc
import KilnSystem
import Testing
import KilnTestSupport
@testable import KilnNetlink

/// The real kernel: every call inside a network namespace made for the test, checked with `ip -j` there.
@Suite struct NamespaceTests {
    /// Runs `body` with a session in a fresh namespace; a kernel without the link type (EOPNOTSUPP: the module is
    /// not built, as on this CI host for dummy and 8021q) cancels the test, which the run reports as skipped.
    func withLinkType(_ kind: String, _ body: (NetlinkSession) throws -> Void) throws {
        try withTestNamespace { ns in
            let session = try NetworkNamespace.run(path: "/run/netns/\(ns)") { try NetlinkSession() }
            do {
                try body(session)
            } catch let error as NetlinkError where error.code == EOPNOTSUPP {
                try Test.cancel("the host kernel has no \(kind) links (\(error)); the guest kernel's are tested by the integration suite")
            }
        }
    }

    @Test func dummyLink() throws {
        try withLinkType("dummy") { session in
            try session.addDummy(name: "dum0")
            #expect(try session.link(named: "dum0").kind == "dummy")
        }
    }

    @Test func vlanLink() throws {
        try withLinkType("802.1Q") { session in
            try session.addVeth(name: "lan", peer: "lanp")
            let lan = try session.link(named: "lan")
            try session.addVLAN(parent: lan.index, id: 10, name: "lan.10")
            #expect(try session.link(named: "lan.10").vlanID == 10)
        }
    }

    @Test func configureLinksAddressesBridgeAndRoutes() throws {
        try withTestNamespace { ns in
            let session = try NetworkNamespace.run(path: "/run/netns/\(ns)") { try NetlinkSession() }

            try session.addVeth(name: "lan", peer: "lanp")
            let lan = try session.link(named: "lan")
            #expect(lan.kind == "veth" && !lan.isUp)
            try session.setMTU(index: lan.index, mtu: 1400)
            try session.setUp(index: lan.index)
            try session.addAddress(index: lan.index, bytes: [10, 0, 0, 1], prefix: 24)
            let v6: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1]
            try session.addAddress(index: lan.index, bytes: v6, prefix: 64)

            do {
                try session.addAddress(index: lan.index, bytes: [10, 0, 0, 1], prefix: 24)
                Issue.record("duplicate address accepted")
            } catch let error as NetlinkError {
                #expect(error.description.hasPrefix("add address 10.0.0.1/24 on lan: File exists"), "\(error)")
            }

            try session.addBridge(name: "br0")
            let bridge = try session.link(named: "br0")
            let port = try session.link(named: "lanp")
            try session.rename(index: port.index, to: "port0")  // still down, as rename requires
            try session.setMaster(index: port.index, master: bridge.index)
            try session.setUp(index: port.index)
            try session.setUp(index: bridge.index)

            try session.addRoute(destination: [10, 9, 0, 0], prefix: 16, oif: lan.index, metric: 50)
            try session.addRoute(destination: [10, 8, 0, 0], prefix: 16, gateway: [10, 0, 0, 254], oif: lan.index, metric: 100)
            try session.addRoute(destination: nil, prefix: 0, gateway: [10, 0, 0, 254], metric: 10)
            let v6Net: [UInt8] = [0x20, 0x01, 0x0d, 0xb8, 0, 1] + [UInt8](repeating: 0, count: 10)
            let v6Gateway: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [0xfe]
            try session.addRoute(destination: v6Net, prefix: 48, gateway: v6Gateway, oif: lan.index, metric: 20)

            // Our own view.
            let links = try session.links()
            let lanNow = try #require(links.first { $0.name == "lan" })
            #expect(lanNow.mtu == 1400 && lanNow.isUp)
            #expect(links.first { $0.name == "port0" }?.master == bridge.index)
            #expect(links.first { $0.name == "br0" }?.kind == "bridge")
            #expect(try session.addresses(index: lan.index).map(\.text).contains("10.0.0.1/24"))
            #expect(try session.routes().contains { $0.destinationText == "10.9.0.0/16" && $0.metric == 50 && $0.scope == RouteValue.scopeLink })

            // iproute2's view.
            let addresses = try json(["ip", "-n", ns, "-j", "addr", "show", "dev", "lan"])
            let info = (addresses.first?["addr_info"] as? [[String: Any]]) ?? []
            let v4 = info.first { $0["family"] as? String == "inet" }
            #expect(v4?["local"] as? String == "10.0.0.1" && v4?["prefixlen"] as? Int == 24 && v4?["broadcast"] as? String == "10.0.0.255")
            #expect(info.contains { $0["local"] as? String == "2001:db8::1" && $0["prefixlen"] as? Int == 64 })
            #expect(addresses.first?["mtu"] as? Int == 1400)

            let portJSON = try json(["ip", "-n", ns, "-j", "link", "show", "dev", "port0"])
            #expect(portJSON.first?["master"] as? String == "br0")

            let routes = try json(["ip", "-n", ns, "-j", "route", "show"])
            let direct = routes.first { $0["dst"] as? String == "10.9.0.0/16" }
            #expect(direct?["dev"] as? String == "lan" && direct?["metric"] as? Int == 50)
            #expect(direct?["protocol"] as? String == "static" && direct?["scope"] as? String == "link")
            let viaGateway = routes.first { $0["dst"] as? String == "10.8.0.0/16" }
            #expect(viaGateway?["gateway"] as? String == "10.0.0.254" && viaGateway?["metric"] as? Int == 100)
            let defaultRoute = routes.first { $0["dst"] as? String == "default" }
            #expect(defaultRoute?["gateway"] as? String == "10.0.0.254" && defaultRoute?["metric"] as? Int == 10)
            let routes6 = try json(["ip", "-n", ns, "-6", "-j", "route", "show"])
            #expect(routes6.contains { $0["dst"] as? String == "2001:db8:1::/48" && $0["gateway"] as? String == "2001:db8::fe" && $0["metric"] as? Int == 20 })

            // Removal.
            try session.deleteRoute(destination: [10, 9, 0, 0], prefix: 16, oif: lan.index, metric: 50)
            #expect(try !json(["ip", "-n", ns, "-j", "route", "show"]).contains { $0["dst"] as? String == "10.9.0.0/16" })
            try session.deleteAddress(index: lan.index, bytes: [10, 0, 0, 1], prefix: 24)
            #expect(try !session.addresses(index: lan.index).contains { $0.text == "10.0.0.1/24" })
            try session.deleteLink(index: bridge.index)
            #expect(throws: NetlinkError.self) { _ = try session.link(named: "br0") }
        }
    }

    @Test func missingLinkAndClashingRenameAreNamedErrors() throws {
        try withTestNamespace { ns in
            let session = try NetworkNamespace.run(path: "/run/netns/\(ns)") { try NetlinkSession() }
            do {
                _ = try session.link(named: "nope0")
                Issue.record("found a link that does not exist")
            } catch let error as NetlinkError {
                #expect(error.code == ENODEV && error.description.hasPrefix("find link on nope0: No such device"), "\(error)")
            }
            try session.addBridge(name: "br9")
            try session.addBridge(name: "br8")
            let bridge = try session.link(named: "br8")
            do {
                try session.rename(index: bridge.index, to: "br9")
                Issue.record("renamed a link onto an existing name")
            } catch let error as NetlinkError {
                #expect(error.code == EEXIST && error.description.hasPrefix("rename to br9 on br8: File exists"), "\(error)")
            }
        }
    }
}

/// Runs `ip -j ...` and parses its JSON array.
func json(_ arguments: [String]) throws -> [[String: Any]] {
    let result = try runProcess(arguments)
    guard result.status.isSuccess else { throw Errno(EIO, operation: arguments.joined(separator: " ")) }
    let data = Data(result.output.utf8)
    return (try JSONSerialization.jsonObject(with: data) as? [[String: Any]]) ?? []
}

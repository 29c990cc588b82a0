import Glibc
import Testing
@testable import KilnNetlink

/// Decoders against replies the kernel really sent (see GoldenFixtures.swift).
@Suite struct DecodeTests {
    @Test func bridgeLink() throws {
        let messages = try NetlinkMessage.decodeAll(bytes(hex: Golden.linkBridge))
        let link = try Link(try #require(messages.first))
        #expect(link.index == 2 && link.name == "br0" && link.kind == "bridge")
        #expect(link.addressText == "02:11:22:33:44:55")
        #expect(link.isUp && link.mtu == 1500 && link.master == nil)
    }

    @Test func vethPortWithMaster() throws {
        let link = try Link(try #require(try NetlinkMessage.decodeAll(bytes(hex: Golden.linkVethPort)).first))
        #expect(link.index == 4 && link.name == "v0" && link.kind == "veth")
        #expect(link.master == 2 && link.parent == 3 && !link.isUp)
        #expect(link.address == [2, 0, 0, 0, 0, 0x10])
    }

    @Test func addressDump() throws {
        let messages = try NetlinkMessage.decodeAll(bytes(hex: Golden.addressDump))
        let addresses = try messages.map(InterfaceAddress.init)
        #expect(addresses.map(\.text) == ["10.0.0.1/24", "2001:db8::1/64"])
        #expect(addresses.allSatisfy { $0.index == 2 })
        #expect(addresses[0].broadcast == [10, 0, 0, 255] && addresses[0].label == "br0")
        #expect(messages.allSatisfy { $0.flags & MessageFlags.multi != 0 })
        let done = try NetlinkMessage.decodeAll(bytes(hex: Golden.addressDumpDone))
        #expect(done.map(\.type) == [MessageType.done])
    }

    @Test func errorWithExtendedAck() throws {
        let message = try #require(try NetlinkMessage.decodeAll(bytes(hex: Golden.vlanUnsupported)).first)
        let ack = try NetlinkAcknowledgement(message)
        #expect(ack.error == -EOPNOTSUPP && ack.message == "Unknown device type" && !ack.isSuccess)
        #expect(ack.requestSequence == 9)
        let exists = try NetlinkAcknowledgement(try #require(try NetlinkMessage.decodeAll(bytes(hex: Golden.addressExists)).first))
        #expect(exists.error == -EEXIST && exists.message == "ipv4: Address already assigned")
    }

    @Test func plainAcknowledgement() throws {
        // struct nlmsgerr { int error = 0; struct nlmsghdr msg } as the kernel acks a capped request.
        var payload: [UInt8] = [0, 0, 0, 0]
        payload += NetlinkMessage(type: MessageType.newLink, flags: 5, sequence: 77).encoded()
        let ack = try NetlinkAcknowledgement(NetlinkMessage(type: MessageType.error, flags: MessageFlags.capped, payload: payload))
        #expect(ack.isSuccess && ack.requestSequence == 77 && ack.message == nil)
    }

    @Test func truncatedInputIsAnErrorNotACrash() throws {
        let full = bytes(hex: Golden.linkBridge)
        for cut in [3, 15, 17, 40, full.count - 1] {
            #expect(throws: NetlinkDecodeError.self) {
                let messages = try NetlinkMessage.decodeAll(full.prefix(cut))
                if messages.isEmpty { throw NetlinkDecodeError("nothing") }
                _ = try messages.map(Link.init)
            }
        }
        #expect(throws: NetlinkDecodeError.self) { _ = try NetlinkAttribute.decodeAll([8, 0, 1, 0, 1]) }
        #expect(throws: NetlinkDecodeError.self) { _ = try NetlinkAttribute.decodeAll([2, 0, 1, 0]) }
    }

    @Test func nestedAttributesRoundTrip() throws {
        let info = NetlinkAttribute.nested(LinkAttribute.linkInfo, [
            .unterminated(LinkAttribute.infoKind, "vlan"), .nested(LinkAttribute.infoData, [.u16(LinkAttribute.vlanID, 4094)]),
        ])
        let decoded = try NetlinkAttribute.decodeAll([info].encoded())
        #expect(decoded == [info])
        let inner = try decoded[0].nested()
        #expect(inner.first(LinkAttribute.infoKind)?.string == "vlan")
        #expect(try inner.first(LinkAttribute.infoData)?.nested().first(LinkAttribute.vlanID)?.u16 == 4094)
        #expect([info].encoded().count % 4 == 0)
    }
}

@Suite struct ValueTests {
    @Test(arguments: [
        ([10, 0, 0, 1], "10.0.0.1"),
        ([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], "2001:db8::1"),
        ([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], "::"),
        ([0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], "fe80::"),
        ([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1], "2001:db8:0:1::1"),
        ([0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 1, 0, 1, 0, 1, 0, 1], "2001:db8:1:0:1:1:1:1"),
        ([2, 0x11, 0x22, 0x33, 0x44, 0x55], "02:11:22:33:44:55"),
    ] as [([UInt8], String)]) func addressText(_ bytes: [UInt8], _ text: String) {
        #expect(AddressText.format(bytes) == text)
    }

    @Test func broadcastFromPrefix() {
        #expect(AddressRequest.broadcast([10, 1, 2, 3], 24) == [10, 1, 2, 255])
        #expect(AddressRequest.broadcast([10, 1, 2, 3], 20) == [10, 1, 15, 255])
        #expect(AddressRequest.broadcast([192, 168, 1, 9], 30) == [192, 168, 1, 11])
    }

    @Test func point2pointPrefixesGetNoBroadcast() throws {
        let message = try AddressRequest.add(index: 1, address: [10, 0, 0, 1], prefixLength: 31)
        let attributes = try NetlinkAttribute.decodeAll(message.payload.dropFirst(AddressInfoHeader.size))
        #expect(attributes.map(\.kind) == [AddressAttribute.local, AddressAttribute.address])
    }

    @Test func invalidArgumentsAreNamed() {
        #expect(throws: NetlinkError.self) { _ = try AddressRequest.add(index: 1, address: [1, 2, 3], prefixLength: 8) }
        do {
            _ = try AddressRequest.add(index: 1, address: [10, 0, 0, 1], prefixLength: 33)
            Issue.record("prefix 33 accepted")
        } catch {
            #expect(error.description == "add address 10.0.0.1/33: invalid argument: prefix length 33 is over 32")
        }
        do {
            _ = try LinkRequest.addVLAN(parent: 2, id: 4095, name: "lan.4095")
            Issue.record("VLAN 4095 accepted")
        } catch {
            #expect(error.description == "add VLAN 4095 lan.4095: invalid argument: VLAN id 4095 is outside 1-4094")
        }
        #expect(throws: NetlinkError.self) { _ = try LinkRequest.add(name: "a-name-too-long-x", kind: "bridge") }
        #expect(throws: NetlinkError.self) { _ = try LinkRequest.rename(index: 1, to: "with space") }
        #expect(throws: NetlinkError.self) {
            _ = try RouteRequest.add(Route(family: 2, destination: [10, 0, 0, 0], prefixLength: 8, gateway: [UInt8](repeating: 0, count: 16)))
        }
    }

    @Test func routeScopeFollowsTheGateway() {
        #expect(Route(family: 2, destination: [10, 0, 0, 0], prefixLength: 8, outputInterface: 2).scope == RouteValue.scopeLink)
        #expect(Route(family: 2, destination: nil, prefixLength: 0, gateway: [10, 0, 0, 1]).scope == RouteValue.scopeUniverse)
        #expect(Route(family: 2, destination: nil, prefixLength: 0, gateway: [10, 0, 0, 1]).destinationText == "default")
    }
}

import Testing
@testable import KilnVPN

func hex(_ bytes: [UInt8]) -> String { bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined() }

@Suite struct BLAKE2sTests {
    @Test func rfc7693AppendixB() {
        #expect(hex(BLAKE2s.hash(Array("abc".utf8))) == "508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982")
    }

    /// RFC 7693 Appendix E: the grand hash over keyed and unkeyed digests of every length combination.
    @Test func rfc7693SelfTest() {
        func sequence(_ count: Int, seed: UInt32) -> [UInt8] {
            var a = 0xDEAD_4BAD &* seed, b: UInt32 = 1
            return (0..<count).map { _ in
                let t = a &+ b
                a = b
                b = t
                return UInt8(t >> 24)
            }
        }
        var grand = BLAKE2s(outputLength: 32)
        for outputLength in [16, 20, 28, 32] {
            for inputLength in [0, 3, 64, 65, 255, 1024] {
                let input = sequence(inputLength, seed: UInt32(inputLength))
                var plain = BLAKE2s(outputLength: outputLength)
                plain.update(input)
                grand.update(plain.finalize())
                var keyed = BLAKE2s(outputLength: outputLength, key: sequence(outputLength, seed: UInt32(outputLength)))
                keyed.update(input)
                grand.update(keyed.finalize())
            }
        }
        #expect(hex(grand.finalize()) == "6a411f08ce25adcdfb02aba641451cec53c598b24f4fc787fbdc88797f4c1dfe")
    }

    @Test func keyedMACAndHMACAndHKDF() {
        let key = (0..<32).map { UInt8($0) }
        #expect(hex(BLAKE2s.mac(key: key, Array("abc".utf8))) == "61ba5f165c194692e09d12520cc4c74a")
        #expect(hex(BLAKE2s.hmac(key: key, Array("Kiln".utf8))) == "cfcdd87040d12116a31bb452b837bd3692b1e53e04359b0bdffc06d94823ac80")
        let outputs = BLAKE2s.kdf(2, key: key, input: Array("Kiln".utf8))
        #expect(hex(outputs[0]) == "11a5395cf38b22e07605cfb31ebbbb09fc3765fd17e9644e64ec68c550929b7d")
        #expect(hex(outputs[1]) == "a3aeec8a52f2669d5969da891c80ce78a84b45852de1587154c59c0dcad6e28a")
    }

    @Test func tai64nOrdering() {
        let a = TAI64N.encode(seconds: 1_700_000_000, nanoseconds: 5)
        let b = TAI64N.encode(seconds: 1_700_000_000, nanoseconds: 6)
        #expect(a.count == 12 && a[0] == 0x40)
        #expect(TAI64N.isAfter(b, a) && !TAI64N.isAfter(a, b) && !TAI64N.isAfter(a, a))
    }
}

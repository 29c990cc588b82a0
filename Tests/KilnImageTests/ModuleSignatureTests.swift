import Testing
@testable import KilnImage

/// Signature stripping on modules laid out the way the kernel's sign-file appends them.
@Suite struct ModuleSignatureTests {
    let elf: [UInt8] = [0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0] + Array(repeating: 0xAB, count: 200)

    /// `module` + PKCS#7 blob + struct module_signature (sig_len big-endian last) + marker.
    func signed(_ module: [UInt8], signatureLength: Int, declaredLength: Int? = nil) -> [UInt8] {
        let declared = UInt32(declaredLength ?? signatureLength)
        let info: [UInt8] = [0, 0, 2, 0, 0, 0, 0, 0,
                             UInt8(declared >> 24), UInt8(declared >> 16 & 0xff), UInt8(declared >> 8 & 0xff), UInt8(declared & 0xff)]
        return module + Array(repeating: 0x30, count: signatureLength) + info + ModuleSignature.marker
    }

    @Test func signedModuleLosesExactlyItsSignature() throws {
        let stripped = try ModuleSignature.stripped(signed(elf, signatureLength: 693), module: "nf_tables.ko")
        #expect(stripped == elf)
    }

    @Test func unsignedModuleIsUnchanged() throws {
        #expect(try ModuleSignature.stripped(elf, module: "dummy.ko") == elf)
        let short = Array(ModuleSignature.marker.suffix(10))
        #expect(try ModuleSignature.stripped(short, module: "tiny.ko") == short)
    }

    @Test func lengthPointingOutsideTheFileIsAnErrorNamingTheModule() {
        let bad = signed(elf, signatureLength: 16, declaredLength: 100_000)
        #expect {
            _ = try ModuleSignature.stripped(bad, module: "veth.ko")
        } throws: { error in
            "\(error)".contains("veth.ko") && "\(error)".contains("100000")
        }
    }

    @Test func remainderThatIsNotELFIsAnError() {
        let notELF = signed(Array(repeating: 0x11, count: 64), signatureLength: 32)
        #expect(throws: ImageError.self) { _ = try ModuleSignature.stripped(notELF, module: "x.ko") }
    }
}

import Glibc
import Testing
@testable import KilnSystem

@Suite struct ErrnoTests {
    @Test func descriptionNamesOperationSubjectAndReason() {
        let error = Errno(EEXIST, operation: "mkdir", subject: "/run/kiln")
        #expect(error.description == "mkdir /run/kiln: File exists")
        #expect(Errno(EPERM, operation: "reboot").description == "reboot: Operation not permitted")
        #expect(error.is(EEXIST))
    }

    @Test func systemCallThrowsWithTheRealErrno() {
        #expect(throws: Errno(ENOENT, operation: "open", subject: "/nonexistent/kiln")) {
            _ = try FileDescriptor.open("/nonexistent/kiln", .readOnly)
        }
    }

    @Test func systemCallRetriesInterruptsOnly() throws {
        var calls = 0
        let value = try systemCall("test") { () -> Int32 in
            calls += 1
            if calls < 3 { errno = EINTR; return -1 }
            return 42
        }
        #expect(value == 42 && calls == 3)
        #expect(throws: Errno(EAGAIN, operation: "test")) {
            try systemCall("test") { () -> Int32 in errno = EAGAIN; return -1 }
        }
    }

    @Test func shimCallDecodesNegativeErrno() {
        #expect(throws: Errno(ENODEV, operation: "shim", subject: "x")) {
            try shimCall("shim", "x") { -ENODEV }
        }
    }
}

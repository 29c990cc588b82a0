import Glibc

/// A failed system call: the errno value, the operation that failed and the path or name it concerned.
///
/// Every wrapper in KilnSystem throws this one type, so a caller prints `"mkdir /run/kiln: Permission denied"`
/// without knowing which syscall sat underneath.
public struct Errno: Error, Equatable, Sendable, CustomStringConvertible {
    /// The raw errno value (always positive).
    public var code: Int32
    /// What was being done, in the words of the call: `"open"`, `"mount"`, `"load module"`.
    public var operation: String
    /// The path, device or name the operation concerned, if any.
    public var subject: String?

    public init(_ code: Int32, operation: String, subject: String? = nil) {
        self.code = code
        self.operation = operation
        self.subject = subject
    }

    /// The C library's text for `code`, e.g. "File exists".
    public var message: String { Errno.message(for: code) }

    public var description: String {
        if let subject { return "\(operation) \(subject): \(message)" }
        return "\(operation): \(message)"
    }

    /// `strerror` text for an errno value; thread-safe (`strerror_r`, XSI variant as Swift imports it).
    public static func message(for code: Int32) -> String {
        var buffer = [CChar](repeating: 0, count: 128)
        let result = buffer.withUnsafeMutableBufferPointer { buf -> Int32 in
            guard let base = buf.baseAddress else { return EINVAL }
            return strerror_r(code, base, buf.count - 1)
        }
        guard result == 0, buffer[0] != 0 else { return "error \(code)" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// True when both errors carry the same errno value, whatever the operation.
    public func `is`(_ code: Int32) -> Bool { self.code == code }
}

/// Runs a system call that returns -1 and sets `errno` on failure, retrying while it fails with EINTR.
///
/// This is the one place in Kiln that decides about EINTR (see swift-system's `valueOrErrno`).
@discardableResult
@inline(__always)
public func systemCall<T: FixedWidthInteger>(
    _ operation: String, _ subject: String? = nil, retryOnInterrupt: Bool = true, _ body: () -> T
) throws(Errno) -> T {
    while true {
        let result = body()
        if result != -1 { return result }
        let code = errno
        if code == EINTR && retryOnInterrupt { continue }
        throw Errno(code, operation: operation, subject: subject)
    }
}

/// Runs a CKilnShims function that returns a value >= 0 or -errno, retrying on -EINTR.
@discardableResult
@inline(__always)
public func shimCall(_ operation: String, _ subject: String? = nil, _ body: () -> Int32) throws(Errno) -> Int32 {
    while true {
        let result = body()
        if result >= 0 { return result }
        if result == -EINTR { continue }
        throw Errno(-result, operation: operation, subject: subject)
    }
}

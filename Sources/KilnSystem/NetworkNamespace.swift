import CKilnShims
import Glibc

/// Runs work inside another network namespace without moving the calling thread.
///
/// setns(2) changes only the calling thread, and a pooled thread must never be left in a foreign namespace,
/// so the body runs on a fresh thread that enters the namespace and ends with the body. Sockets and TUN
/// devices created there stay bound to that namespace after the thread is gone (the kernel binds them at
/// creation), which is how the host harness and the tests drive a namespace made with `ip netns add`.
public enum NetworkNamespace {
    /// Runs `body` on a new thread inside the network namespace at `path` (e.g. `/run/netns/NAME`) and
    /// returns its result. The caller blocks until the body is done.
    public static func run<T>(path: String, _ body: () throws -> T) throws -> T {
        try withoutActuallyEscaping(body) { escapable in
            let job = Job {
                try shimCall("enter network namespace", path) { kiln_setns_path(path, 0x4000_0000) }  // CLONE_NEWNET
                return try escapable()
            }
            let context = Unmanaged.passRetained(job as AnyObject).toOpaque()
            var thread = pthread_t()
            let created = pthread_create(&thread, nil, { raw in
                guard let raw else { return nil }
                let object = Unmanaged<AnyObject>.fromOpaque(raw).takeRetainedValue()
                (object as? Runnable)?.run()
                return nil
            }, context)
            if created != 0 {
                Unmanaged<AnyObject>.fromOpaque(context).release()
                throw Errno(created, operation: "start namespace thread for", subject: path)
            }
            pthread_join(thread, nil)
            guard let result = job.result else { throw Errno(EINTR, operation: "namespace thread for", subject: path) }
            return try result.get()
        }
    }
}

private protocol Runnable: AnyObject {
    func run()
}

/// The body and its outcome, shared between the caller and the namespace thread (which the caller joins).
private final class Job<T>: Runnable {
    let body: () throws -> T
    var result: Result<T, any Error>?

    init(_ body: @escaping () throws -> T) {
        self.body = body
    }

    func run() {
        result = Result { try body() }
    }
}

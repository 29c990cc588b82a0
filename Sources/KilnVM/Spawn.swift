#if canImport(Glibc)
import Glibc
#endif

/// What the child's fd 0, 1 or 2 becomes.
enum ChildDescriptor {
    /// Keep the parent's descriptor of the same number.
    case inherit
    /// Duplicate this parent descriptor onto the slot (it is O_CLOEXEC in the parent).
    case duplicate(Int32)
    /// Open a path with flags and mode.
    case open(String, flags: Int32, mode: mode_t)
}

/// posix_spawn with the attributes a managed process needs. The child gets its own session and process group
/// (POSIX_SPAWN_SETSID), default signal dispositions, an empty signal mask and no descriptors above 2.
enum Spawner {
    /// glibc's value for the GNU extension; Swift's Glibc module does not export it.
    private static let spawnSetsid: Int32 = 0x80

    private typealias AddChdir = @convention(c) (
        UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>
    ) -> Int32
    private typealias AddClosefrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32

    // GNU extensions (glibc 2.29 / 2.34) are hidden from Swift's Glibc module; look them up once.
    private static let addChdir: AddChdir? = {
        dlsym(nil, "posix_spawn_file_actions_addchdir_np").map { unsafeBitCast($0, to: AddChdir.self) }
    }()
    private static let addClosefrom: AddClosefrom? = {
        dlsym(nil, "posix_spawn_file_actions_addclosefrom_np").map { unsafeBitCast($0, to: AddClosefrom.self) }
    }()

    /// Starts `arguments[0]` (searched in PATH when it has no slash) and returns the child's pid.
    static func spawn(
        arguments: [String], environment: [String]?, workingDirectory: String?, stdio: [ChildDescriptor]
    ) throws(VMError) -> pid_t {
        guard let program = arguments.first, !program.isEmpty else {
            throw VMError.invalidCommand("empty argument list")
        }
        var actions = posix_spawn_file_actions_t()
        var attributes = posix_spawnattr_t()
        posix_spawn_file_actions_init(&actions)
        posix_spawnattr_init(&attributes)
        defer {
            posix_spawn_file_actions_destroy(&actions)
            posix_spawnattr_destroy(&attributes)
        }

        var rc: Int32 = 0
        for (slot, descriptor) in stdio.enumerated() where rc == 0 {
            switch descriptor {
            case .inherit:
                break
            case .duplicate(let fd):
                rc = posix_spawn_file_actions_adddup2(&actions, fd, Int32(slot))
            case let .open(path, flags, mode):
                rc = posix_spawn_file_actions_addopen(&actions, Int32(slot), path, flags, mode)
            }
        }
        if rc == 0, let workingDirectory {
            guard let addChdir else { throw VMError.system(operation: "chdir for", subject: program, errno: ENOSYS) }
            rc = addChdir(&actions, workingDirectory)
        }
        if rc == 0, let addClosefrom { rc = addClosefrom(&actions, 3) }
        if rc != 0 { throw VMError.system(operation: "prepare spawn of", subject: program, errno: rc) }

        var defaults = sigset_t()
        sigfillset(&defaults)
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setsigmask(&attributes, &emptyMask)
        let flags = spawnSetsid | Int32(POSIX_SPAWN_SETSIGDEF) | Int32(POSIX_SPAWN_SETSIGMASK)
        rc = posix_spawnattr_setflags(&attributes, Int16(flags))
        if rc != 0 { throw VMError.system(operation: "prepare spawn of", subject: program, errno: rc) }

        let argv = CStringArray(arguments)
        let envp = environment.map(CStringArray.init)
        var pid: pid_t = 0
        // ETXTBSY: a program written just now may still be open for writing in a child another thread is
        // forking at this instant (until that child's exec). It passes within milliseconds; retry briefly.
        for attempt in 0..<6 {
            rc = argv.withPointer { argvPointer in
                let envPointer = envp?.pointer ?? environ
                if program.contains("/") {
                    return posix_spawn(&pid, program, &actions, &attributes, argvPointer, envPointer)
                }
                return posix_spawnp(&pid, program, &actions, &attributes, argvPointer, envPointer)
            }
            guard rc == ETXTBSY else { break }
            usleep(useconds_t(10_000 << attempt))
        }
        if rc != 0 { throw VMError.spawnFailed(program: program, errno: rc) }
        return pid
    }
}

/// A NULL-terminated `char *[]` that owns its strings.
private final class CStringArray {
    let pointer: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>
    private let count: Int

    init(_ strings: [String]) {
        count = strings.count
        pointer = .allocate(capacity: strings.count + 1)
        for (index, string) in strings.enumerated() { pointer[index] = strdup(string) }
        pointer[strings.count] = nil
    }

    func withPointer<R>(_ body: (UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R { body(pointer) }

    deinit {
        for index in 0..<count { free(pointer[index]) }
        pointer.deallocate()
    }
}

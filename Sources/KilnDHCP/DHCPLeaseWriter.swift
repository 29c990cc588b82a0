import Glibc
import KilnConfig
import KilnSystem

/// Writes lease files on its own thread so encoding and fsync never stall the packet loop.
/// Submissions coalesce per file: only the newest table of each interface is written.
final class DHCPLeaseWriter: @unchecked Sendable {
    private struct Job { var table: DHCPLeaseTable; var interface: InterfaceName; var path: String }
    private var mutex = pthread_mutex_t()
    private var cond = pthread_cond_t()
    private var pending: [String: Job] = [:]
    private var busy = false
    private var stopping = false
    private var thread: JoinableThread?
    private let log: (String) -> Void

    init(log: @escaping (String) -> Void) {
        self.log = log
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&cond, nil)
        // Without the thread, `finish` writes what is queued on the caller's thread.
        thread = try? JoinableThread("start the lease writer") { [self] in loop() }
    }

    /// Queues the table for writing, replacing any older unwritten one for the same file.
    func submit(_ table: DHCPLeaseTable, interface: InterfaceName, path: String) {
        pthread_mutex_lock(&mutex)
        pending[path] = Job(table: table, interface: interface, path: path)
        pthread_cond_broadcast(&cond)
        pthread_mutex_unlock(&mutex)
    }

    /// Writes what is queued, then ends the thread. Returns when the files are on disk.
    func finish() {
        pthread_mutex_lock(&mutex)
        stopping = true
        pthread_cond_broadcast(&cond)
        pthread_mutex_unlock(&mutex)
        if let thread { thread.join() } else { loop() }
    }

    private func loop() {
        pthread_mutex_lock(&mutex)
        while true {
            while pending.isEmpty && !stopping { pthread_cond_wait(&cond, &mutex) }
            if pending.isEmpty && stopping { break }
            let jobs = Array(pending.values)
            pending.removeAll()
            pthread_mutex_unlock(&mutex)
            for job in jobs {
                do { try DHCPLeaseStore.save(job.table, interface: job.interface, path: job.path) } catch {
                    log("\(job.interface): cannot save leases: \(error)")
                }
            }
            pthread_mutex_lock(&mutex)
        }
        pthread_mutex_unlock(&mutex)
    }
}

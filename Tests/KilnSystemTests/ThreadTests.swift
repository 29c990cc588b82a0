import Glibc
import KilnSystem
import Testing

/// JoinableThread and ConditionLock: what kiln-init's parallel module loaders share.
@Suite struct ThreadTests {
    final class Counter: @unchecked Sendable {
        let lock = ConditionLock()
        var value = 0
    }

    @Test func threadsUpdateUnderTheLockWithoutLosingAny() throws {
        let counter = Counter()
        var threads: [JoinableThread] = []
        for _ in 0..<4 {
            threads.append(try JoinableThread("start a counter") {
                for _ in 0..<20_000 { counter.lock.locked { counter.value += 1 } }
            })
        }
        for thread in threads { thread.join() }
        #expect(counter.value == 80_000)
    }

    @Test func aWaiterWakesWhenTheConditionBecomesTrue() throws {
        let counter = Counter()
        // The waiter hands on each value it sees; the main thread only moves after the waiter has.
        let waiter = try JoinableThread("start a waiter") {
            for expected in 1...100 {
                let seen = counter.lock.wait { counter.value == expected ? counter.value : nil }
                counter.lock.broadcast { counter.value = -seen }
            }
        }
        for next in 1...100 {
            counter.lock.broadcast { counter.value = next }
            let answer = counter.lock.wait { counter.value < 0 ? counter.value : nil }
            #expect(answer == -next)
        }
        waiter.join()
    }
}

import Glibc

nonisolated(unsafe) private var stopFlag: sig_atomic_t = 0

/// SIGTERM/SIGINT set a flag the serve loop polls (no SA_RESTART, so poll returns at once).
func installStopHandler() {
    var action = sigaction()
    action.__sigaction_handler.sa_handler = { _ in stopFlag = 1 }
    sigemptyset(&action.sa_mask)
    sigaction(SIGTERM, &action, nil)
    sigaction(SIGINT, &action, nil)
}

func stopRequested() -> Bool { stopFlag != 0 }

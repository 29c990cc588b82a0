#define _GNU_SOURCE
#include "CKilnShims.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

// Only async-signal-safe calls between fork and exec: the parent has other threads.
int kiln_spawn(const char *path, char *const argv[], char *const envp[], const int *fds, int nfds,
               const char *cwd, int search_path, int new_session, int death_signal) {
    int report[2];
    if (pipe2(report, O_CLOEXEC) < 0) return -errno;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(report[0]);
        close(report[1]);
        return -e;
    }
    if (pid == 0) {
        int err = 0;
        struct sigaction dfl = { .sa_handler = SIG_DFL };
        for (int s = 1; s < NSIG; s++) if (s != SIGKILL && s != SIGSTOP) sigaction(s, &dfl, NULL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (new_session && setsid() < 0) { err = errno; goto fail; }
        if (death_signal) {
            if (prctl(PR_SET_PDEATHSIG, death_signal) < 0) { err = errno; goto fail; }
            // The parent may have died before the prctl: then nothing would ever send the signal.
            if (getppid() != parent) _exit(127);
        }
        // Move every source above the targets first, so a dup2 never overwrites a source still needed.
        int moved[16];
        if (nfds > 16) { err = EINVAL; goto fail; }
        for (int i = 0; i < nfds; i++) {
            moved[i] = -1;
            if (fds[i] >= 0 && (moved[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 64)) < 0) { err = errno; goto fail; }
        }
        for (int i = 0; i < nfds; i++) {
            if (moved[i] >= 0 && dup2(moved[i], i) < 0) { err = errno; goto fail; }
        }
        // Everything above the child's own descriptors is closed at exec (the report pipe stays open until then).
        if (syscall(SYS_close_range, (unsigned)nfds, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
            for (int fd = nfds; fd < 4096; fd++) if (fd != report[1]) fcntl(fd, F_SETFD, FD_CLOEXEC);
        }
        if (cwd && chdir(cwd) < 0) { err = errno; goto fail; }
        if (search_path) execvpe(path, argv, envp); else execve(path, argv, envp);
        err = errno;
    fail:
        while (write(report[1], &err, sizeof err) < 0 && errno == EINTR) {}
        _exit(127);
    }
    close(report[1]);
    int err = 0;
    ssize_t n;
    while ((n = read(report[0], &err, sizeof err)) < 0 && errno == EINTR) {}
    close(report[0]);
    if (n == sizeof err) {
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
        return -err;
    }
    return pid;
}

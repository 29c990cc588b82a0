#define _GNU_SOURCE
#include "CKilnShims.h"
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/reboot.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sched.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

_Static_assert(sizeof(struct ifreq) == 40, "struct ifreq layout");
_Static_assert(sizeof(struct signalfd_siginfo) == 128, "struct signalfd_siginfo layout");

static int early_done = 0;

// As PID 1 the Swift runtime reads argv from /proc/self/cmdline; mount /proc (and /dev) before it starts.
__attribute__((constructor)) static void kiln_early_mounts(void) {
    if (getpid() != 1) return;
    mkdir("/proc", 0555);
    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    mkdir("/dev", 0755);
    mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
    early_done = 1;
}

int kiln_early_mounts_done(void) { return early_done; }

int kiln_finit_module(int fd, const char *params, int flags) {
    long r = syscall(SYS_finit_module, fd, params ? params : "", flags);
    return r < 0 ? -errno : 0;
}

int kiln_tun_open(char *name, int tap, int persist) {
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0) return -errno;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = (tap ? IFF_TAP : IFF_TUN) | IFF_NO_PI;
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) { int e = errno; close(fd); return -e; }
    if (persist && ioctl(fd, TUNSETPERSIST, 1) < 0) { int e = errno; close(fd); return -e; }
    memcpy(name, ifr.ifr_name, IFNAMSIZ);
    return fd;
}

int kiln_reboot(int cmd) {
    sync();
    int r = reboot(cmd == 1 ? RB_AUTOBOOT : RB_POWER_OFF);
    return r < 0 ? -errno : 0;
}

int kiln_if_index(const char *name) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return -errno;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    int r = ioctl(s, SIOCGIFINDEX, &ifr);
    int e = errno;
    close(s);
    return r < 0 ? -e : ifr.ifr_ifindex;
}

int kiln_set_ctty(int fd) { return ioctl(fd, TIOCSCTTY, 0) < 0 ? -errno : 0; }

int kiln_signalfd(const sigset_t *mask, int nonblocking) {
    int fd = signalfd(-1, mask, SFD_CLOEXEC | (nonblocking ? SFD_NONBLOCK : 0));
    return fd < 0 ? -errno : fd;
}

int kiln_setns_path(const char *path, int nstype) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    int r = setns(fd, nstype);
    int e = errno;
    close(fd);
    return r < 0 ? -e : 0;
}

int kiln_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC) < 0 ? -errno : 0; }

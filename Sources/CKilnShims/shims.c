#define _GNU_SOURCE
#include "CKilnShims.h"
#include "sendbatch.h"
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

int kiln_tap_open_vnet(char *name) {
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return -errno;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) { int e = errno; close(fd); return -e; }
    int size = 10;
    if (ioctl(fd, TUNSETVNETHDRSZ, &size) < 0) { int e = errno; close(fd); return -e; }
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

int kiln_close_from(unsigned first) { return syscall(SYS_close_range, first, ~0U, 0) < 0 ? -errno : 0; }

// ---- Fast-path switch ----
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <poll.h>

_Static_assert(sizeof(struct tpacket3_hdr) == 48, "struct tpacket3_hdr layout");
_Static_assert(sizeof(struct tpacket_req3) == 28, "struct tpacket_req3 layout");
_Static_assert(sizeof(struct sockaddr_ll) == 20, "struct sockaddr_ll layout");

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

int kiln_packet_open(int ifindex, unsigned block_size, unsigned block_count, unsigned frame_size,
                     unsigned timeout_ms, void **ring) {
    int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
    if (fd < 0) return -errno;
    int e;
    int version = TPACKET_V3;
    if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &version, sizeof version) < 0) goto fail;
    // Every frame comes with a virtio-net header (GSO and partial checksum metadata) right before it, and every
    // frame sent starts with one: segments larger than the MTU pass through and are split where needed.
    int vnet = 1;
    if (setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &vnet, sizeof vnet) < 0) goto fail;
    struct tpacket_req3 req;
    memset(&req, 0, sizeof req);
    req.tp_block_size = block_size;
    req.tp_block_nr = block_count;
    req.tp_frame_size = frame_size;
    req.tp_frame_nr = (block_size / frame_size) * block_count;
    req.tp_retire_blk_tov = timeout_ms;
    if (setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof req) < 0) goto fail;
    // Best effort: kernels before 4.20 lack it, and the caller also skips PACKET_OUTGOING frames.
    int one = 1;
    (void)setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one);
    // Frames sent stay charged to the socket until the receiving side has consumed them (a veth peer's backlog
    // holds up to netdev_max_backlog of them): the default send buffer (~270 small frames) runs out under load.
    // Sends go straight to the driver: no qdisc to pass (a switch port has nothing to shape).
    (void)setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one);
    int sndbuf = 4 << 20;
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf) < 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    void *map = mmap(NULL, (size_t)block_size * block_count, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_LOCKED, fd, 0);
    if (map == MAP_FAILED) map = mmap(NULL, (size_t)block_size * block_count, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) goto fail;
    struct sockaddr_ll sll;
    memset(&sll, 0, sizeof sll);
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(ETH_P_ALL);
    sll.sll_ifindex = ifindex;
    if (bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0) { e = errno; munmap(map, (size_t)block_size * block_count); close(fd); return -e; }
    struct packet_mreq mreq;
    memset(&mreq, 0, sizeof mreq);
    mreq.mr_ifindex = ifindex;
    mreq.mr_type = PACKET_MR_PROMISC;
    if (setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mreq, sizeof mreq) < 0) {
        e = errno; munmap(map, (size_t)block_size * block_count); close(fd); return -e;
    }
    *ring = map;
    return fd;
fail:
    e = errno;
    close(fd);
    return -e;
}

int kiln_packet_unmap(void *ring, size_t length) { return munmap(ring, length) < 0 ? -errno : 0; }

int kiln_packet_stats(int fd, unsigned *packets, unsigned *drops) {
    struct tpacket_stats_v3 st;
    socklen_t len = sizeof st;
    if (getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &st, &len) < 0) return -errno;
    *packets = st.tp_packets;
    *drops = st.tp_drops;
    return 0;
}

struct kiln_txbatch {
    int count;
    int vnet;
    struct mmsghdr msgs[KILN_TX_BATCH];
    struct iovec iov[KILN_TX_BATCH][4];
    uint8_t tags[KILN_TX_BATCH][4];
    uint8_t headers[KILN_TX_BATCH][KILN_VNET_HDR_LEN];
};

kiln_txbatch *kiln_txbatch_new(int vnet) {
    kiln_txbatch *b = calloc(1, sizeof(struct kiln_txbatch));
    if (b) b->vnet = vnet;
    return b;
}
void kiln_txbatch_free(kiln_txbatch *batch) { free(batch); }
int kiln_txbatch_count(const kiln_txbatch *batch) { return batch->count; }

static inline uint16_t le16_at(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline void set_le16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }

int kiln_txbatch_add(kiln_txbatch *b, const void *frame, uint32_t length, int action, uint16_t tci, const void *vnet) {
    if (b->count >= KILN_TX_BATCH) return -ENOBUFS;
    const uint8_t *in = vnet;
    // A device without a virtio-net header (the TAP) cannot take a segment larger than its MTU.
    if (!b->vnet && in && in[1] != 0 /* gso_type */) return -EMSGSIZE;
    int i = b->count;
    const uint8_t *p = frame;
    struct iovec *v = b->iov[i];
    int n;
    if (b->vnet && action == 0 && in && in + KILN_VNET_HDR_LEN == p) {
        // The common case: a frame forwarded as it came, its header right before it (ring blocks and TAP buffers
        // both lay them out so). One iovec and no copy of the header: the kernel imports, checks and copies each
        // iovec of each message on its own, a tenth of the switch's time with 64-byte frames.
        v[0].iov_base = (void *)in; v[0].iov_len = KILN_VNET_HDR_LEN + length;
        n = 1;
    } else if (b->vnet) {
        uint8_t *h = b->headers[i];
        if (in) memcpy(h, in, KILN_VNET_HDR_LEN); else memset(h, 0, KILN_VNET_HDR_LEN);
        // Offsets count from the frame's first byte: a tag pushed or popped moves the headers after it.
        int shift = (action == 2 && length >= 12) ? 4 : (action == 1 && length >= 16) ? -4 : 0;
        if (shift) {
            if (h[0] & 1 /* NEEDS_CSUM */) set_le16(h + 6, (uint16_t)(le16_at(h + 6) + shift));
            if (le16_at(h + 2)) set_le16(h + 2, (uint16_t)(le16_at(h + 2) + shift));
        }
        v[0].iov_base = h; v[0].iov_len = KILN_VNET_HDR_LEN;
        n = 1 + kiln_frame_iovecs(v + 1, b->tags[i], p, length, action, tci);
    } else {
        n = kiln_frame_iovecs(v, b->tags[i], p, length, action, tci);
    }
    memset(&b->msgs[i], 0, sizeof b->msgs[i]);
    b->msgs[i].msg_hdr.msg_iov = b->iov[i];
    b->msgs[i].msg_hdr.msg_iovlen = n;
    return ++b->count;
}

int kiln_txbatch_send(int fd, kiln_txbatch *b, int use_writev) {
    int total = b->count;
    b->count = 0;
    if (use_writev) {
        int sent = 0, err = 0;
        for (int i = 0; i < total; i++) {
            ssize_t r;
            do { r = writev(fd, b->msgs[i].msg_hdr.msg_iov, (int)b->msgs[i].msg_hdr.msg_iovlen); } while (r < 0 && errno == EINTR);
            if (r < 0) err = errno; else sent++;
        }
        return (sent == 0 && err) ? -err : sent;
    }
    return kiln_sendmmsg_all(fd, b->msgs, total);
}

int kiln_sendmmsg_all(int fd, struct mmsghdr *msgs, int total) {
    int sent = 0, err = 0, waits = 0;
    while (sent < total) {
        int r = sendmmsg(fd, msgs + sent, (unsigned)(total - sent), MSG_DONTWAIT);
        if (r < 0) {
            if (errno == EINTR) continue;
            // Send buffer full: wait briefly for room (a switch's RX ring absorbs the pause), and drop only if it
            // stays full.
            if ((errno == EAGAIN || errno == ENOBUFS) && waits < 4) {
                struct pollfd p = {.fd = fd, .events = POLLOUT};
                (void)poll(&p, 1, 2);
                waits++;
                continue;
            }
            waits = 0;
            err = errno;
            // Skip the message the socket refused and carry on with the rest.
            total--;
            if (sent < total) memmove(&msgs[sent], &msgs[sent + 1], sizeof(struct mmsghdr) * (size_t)(total - sent));
            continue;
        }
        sent += r;
        waits = 0;
    }
    return (sent == 0 && err) ? -err : sent;
}

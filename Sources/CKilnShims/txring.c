// A port's PACKET_TX_RING (TPACKET_V2). The kernel walks the ring from its own head and takes every slot marked
// TP_STATUS_SEND_REQUEST, in order, on each send(2); a slot comes back TP_STATUS_AVAILABLE when its skb is freed.
// Slots are therefore filled strictly in order, and `head` here always equals the kernel's head plus the slots
// queued since the last send.
#include "CKilnShims.h"
#include <errno.h>
#include <linux/if_ether.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

struct kiln_txring {
    int fd;
    uint8_t *map;
    size_t length;
    unsigned frame_size, frame_count;
    unsigned head;    // next slot to fill
    unsigned first;   // oldest slot queued since the last send
    unsigned queued;  // slots marked SEND_REQUEST since the last send
};

// Where a frame's bytes start in its slot (the kernel's tp_hdrlen without PACKET_TX_HAS_OFF).
#define DATA_OFFSET (TPACKET_ALIGN(sizeof(struct tpacket2_hdr)))

static inline struct tpacket2_hdr *slot(const kiln_txring *r, unsigned index) {
    return (struct tpacket2_hdr *)(r->map + (size_t)index * r->frame_size);
}
static inline uint32_t status_of(const struct tpacket2_hdr *h) { return __atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE); }

kiln_txring *kiln_txring_open(int ifindex, unsigned frame_size, unsigned frame_count, int *error) {
    int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
    if (fd < 0) { *error = -errno; return NULL; }
    int version = TPACKET_V2, one = 1;
    // Blocks are whole pages holding whole slots, so slot i sits at i × frame_size in the mapping.
    long page = sysconf(_SC_PAGESIZE);
    unsigned block = frame_size <= (unsigned)page ? (unsigned)page : (frame_size + (unsigned)page - 1) / (unsigned)page * (unsigned)page;
    if (frame_size == 0 || frame_size % TPACKET_ALIGNMENT || block % frame_size) { *error = -EINVAL; close(fd); return NULL; }
    unsigned per_block = block / frame_size;
    frame_count = (frame_count + per_block - 1) / per_block * per_block;
    struct tpacket_req req = {.tp_block_size = block, .tp_block_nr = frame_count / per_block,
                              .tp_frame_size = frame_size, .tp_frame_nr = frame_count};
    // PACKET_LOSS: a slot the kernel cannot parse is skipped instead of stopping the ring (frames queued here are
    // always well formed: at least an Ethernet header, no larger than a slot).
    // PACKET_VNET_HDR only for the header's hdr_len: set to the frame's length, it makes the kernel copy the whole
    // frame into the skb's linear area. Without it, all but the Ethernet header would be page fragments of the
    // ring, which a veth (or any forwarding device) copies again into fresh pages before it delivers them.
    if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &version, sizeof version) < 0 ||
        setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one) < 0 ||
        setsockopt(fd, SOL_PACKET, PACKET_LOSS, &one, sizeof one) < 0) goto fail;
    (void)setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one);
    // Slots stay charged to the socket until the receiver frees their skbs (see kiln_packet_open).
    int sndbuf = 4 << 20;
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf) < 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    if (setsockopt(fd, SOL_PACKET, PACKET_TX_RING, &req, sizeof req) < 0) goto fail;
    size_t length = (size_t)frame_size * frame_count;
    void *map = mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) goto fail;
    struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_protocol = 0, .sll_ifindex = ifindex};
    if (bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0) { int e = errno; munmap(map, length); errno = e; goto fail; }
    kiln_txring *r = calloc(1, sizeof *r);
    if (!r) { munmap(map, length); errno = ENOMEM; goto fail; }
    *r = (kiln_txring){.fd = fd, .map = map, .length = length, .frame_size = frame_size, .frame_count = frame_count};
    return r;
fail:
    *error = -errno;
    close(fd);
    return NULL;
}

void kiln_txring_free(kiln_txring *r) {
    if (!r) return;
    munmap(r->map, r->length);
    close(r->fd);
    free(r);
}

int kiln_txring_queued(const kiln_txring *r) { return (int)r->queued; }

int kiln_txring_add(kiln_txring *r, const void *frame, uint32_t length, int action, uint16_t tci) {
    const uint8_t *p = frame;
    // The same tag edits as kiln_txbatch_add, made while copying; a frame too short for its edit goes as is.
    if (length < 12 || ((action == 1 || action == 3) && length < 16)) action = 0;
    uint32_t out = length + (action == 2 ? 4 : 0) - (action == 1 ? 4 : 0);
    if (out < ETH_HLEN) return -EINVAL;
    if (out + KILN_VNET_HDR_LEN > r->frame_size - DATA_OFFSET) return -EMSGSIZE;
    struct tpacket2_hdr *h = slot(r, r->head);
    if (status_of(h) != TP_STATUS_AVAILABLE) return -ENOBUFS;
    uint8_t *v = (uint8_t *)h + DATA_OFFSET;
    // No flags, no GSO; hdr_len (little-endian, bytes 2-3) = the whole frame.
    memset(v, 0, KILN_VNET_HDR_LEN);
    v[2] = (uint8_t)out; v[3] = (uint8_t)(out >> 8);
    uint8_t *d = v + KILN_VNET_HDR_LEN;
    switch (action) {
    case 0: memcpy(d, p, length); break;
    case 1: memcpy(d, p, 12); memcpy(d + 12, p + 16, length - 16); break;
    default: {
        uint32_t rest = action == 2 ? 12 : 16;
        memcpy(d, p, 12);
        d[12] = 0x81; d[13] = 0x00; d[14] = (uint8_t)(tci >> 8); d[15] = (uint8_t)tci;
        memcpy(d + 16, p + rest, length - rest);
    }
    }
    h->tp_len = KILN_VNET_HDR_LEN + out;
    __atomic_store_n(&h->tp_status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
    r->head = (r->head + 1) % r->frame_count;
    return (int)++r->queued;
}

// How many of the queued slots the kernel has not taken yet. It takes them in order, so they are a suffix.
static unsigned untaken(const kiln_txring *r) {
    if (r->queued == 0) return 0;
    unsigned last = (r->first + r->queued - 1) % r->frame_count;
    if (status_of(slot(r, last)) != TP_STATUS_SEND_REQUEST) return 0;
    for (unsigned i = 0; i < r->queued; i++) {
        if (status_of(slot(r, (r->first + i) % r->frame_count)) == TP_STATUS_SEND_REQUEST) return r->queued - i;
    }
    return 0;
}

int kiln_txring_send(kiln_txring *r) {
    if (r->queued == 0) return 0;
    unsigned left = r->queued;
    for (int waits = 0;; waits++) {
        ssize_t sent = send(r->fd, NULL, 0, MSG_DONTWAIT);
        int err = sent < 0 ? errno : 0;
        if (err == EINTR) { waits--; continue; }
        left = untaken(r);
        if (left == 0) break;
        // The send buffer is full (the kernel stopped early, or said EAGAIN): wait briefly for the receivers to
        // free some skbs, as for a sendmmsg batch; any other error ends the attempt.
        if ((err == 0 || err == EAGAIN || err == ENOBUFS) && waits < 4) {
            struct pollfd pfd = {.fd = r->fd, .events = POLLOUT};
            (void)poll(&pfd, 1, 2);
            continue;
        }
        break;
    }
    // Give back what the kernel did not take, newest first, and refill from the kernel's head.
    for (unsigned i = 0; i < left; i++) {
        unsigned index = (r->first + r->queued - 1 - i) % r->frame_count;
        __atomic_store_n(&slot(r, index)->tp_status, TP_STATUS_AVAILABLE, __ATOMIC_RELEASE);
    }
    r->head = (r->first + r->queued - left) % r->frame_count;
    r->first = r->head;
    r->queued = 0;
    return (int)left;
}

int kiln_txring_wait(kiln_txring *r) {
    for (int waits = 0; status_of(slot(r, r->head)) != TP_STATUS_AVAILABLE; waits++) {
        if (waits == 4) return -EAGAIN;
        struct pollfd pfd = {.fd = r->fd, .events = POLLOUT};
        (void)poll(&pfd, 1, 2);
    }
    return 0;
}

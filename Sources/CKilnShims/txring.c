// A port's transmit ring, one of two kinds behind one interface:
//
// - AF_XDP (copy mode, which every driver supports): frames are copied into UMEM chunks, a descriptor per frame goes
//   on the socket's TX ring, and send(2) makes the kernel build a linear skb from each and hand it straight to the
//   driver (no protocol parsing on the way). The kernel takes at most a budget of descriptors per call (32), so a
//   send loops until the ring is drained. A chunk is reused once its completion has been read back.
// - PACKET_TX_RING (TPACKET_V2), where AF_XDP is missing or refused: the kernel walks the ring from its own head and
//   takes every slot marked TP_STATUS_SEND_REQUEST, in order, on each send(2); a slot comes back
//   TP_STATUS_AVAILABLE when its skb is freed. Slots are filled strictly in order, so `head` here always equals the
//   kernel's head plus the slots queued since the last send.
#include "CKilnShims.h"
#include "sendbatch.h"
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_xdp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef AF_XDP
#define AF_XDP 44
#endif
#ifndef SOL_XDP
#define SOL_XDP 283
#endif

struct kiln_txring {
    int kind;         // KILN_TX_XDP or KILN_TX_PACKET
    int fd;
    unsigned frame_size, frame_count;
    unsigned queued;  // frames queued since the last send
    // PACKET_TX_RING
    uint8_t *map;
    size_t length;
    unsigned head;    // next slot to fill
    unsigned first;   // oldest slot queued since the last send
    // AF_XDP
    uint8_t *umem;
    size_t umem_length;
    void *tx_map, *cq_map, *fq_map;
    size_t tx_length, cq_length, fq_length;
    uint32_t *tx_producer, *tx_consumer, *cq_producer, *cq_consumer;
    struct xdp_desc *tx_descs;
    uint32_t producer;     // our TX producer (published by send)
    uint32_t outstanding;  // chunks published and not yet completed
};

static inline void wait_writable(int fd) {
    struct pollfd pfd = {.fd = fd, .events = POLLOUT};
    (void)poll(&pfd, 1, 2);
}

// A frame after its tag edit, as iovecs (kiln_frame_iovecs), to be copied into a slot.
struct edited_frame {
    struct iovec v[3];
    uint8_t tag[4];
    int count;
    uint32_t length;
};

static inline void edit_frame(struct edited_frame *f, const uint8_t *p, uint32_t length, int action, uint16_t tci) {
    f->count = kiln_frame_iovecs(f->v, f->tag, p, length, action, tci);
    f->length = 0;
    for (int i = 0; i < f->count; i++) f->length += (uint32_t)f->v[i].iov_len;
}

static inline void copy_frame(uint8_t *d, const struct edited_frame *f) {
    for (int i = 0; i < f->count; i++) {
        memcpy(d, f->v[i].iov_base, f->v[i].iov_len);
        d += f->v[i].iov_len;
    }
}

// ---- PACKET_TX_RING ----

// Where a frame's bytes start in its slot (the kernel's tp_hdrlen without PACKET_TX_HAS_OFF).
#define DATA_OFFSET (TPACKET_ALIGN(sizeof(struct tpacket2_hdr)))

static inline struct tpacket2_hdr *slot(const kiln_txring *r, unsigned index) {
    return (struct tpacket2_hdr *)(r->map + (size_t)index * r->frame_size);
}
static inline uint32_t status_of(const struct tpacket2_hdr *h) { return __atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE); }

static int packet_open(kiln_txring *r, int ifindex) {
    int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int version = TPACKET_V2, one = 1;
    // Blocks are whole pages holding whole slots, so slot i sits at i × frame_size in the mapping.
    long page = sysconf(_SC_PAGESIZE);
    unsigned block = r->frame_size <= (unsigned)page ? (unsigned)page
                                                     : (r->frame_size + (unsigned)page - 1) / (unsigned)page * (unsigned)page;
    if (r->frame_size == 0 || r->frame_size % TPACKET_ALIGNMENT || block % r->frame_size) { close(fd); return -EINVAL; }
    unsigned per_block = block / r->frame_size;
    r->frame_count = (r->frame_count + per_block - 1) / per_block * per_block;
    struct tpacket_req req = {.tp_block_size = block, .tp_block_nr = r->frame_count / per_block,
                              .tp_frame_size = r->frame_size, .tp_frame_nr = r->frame_count};
    // PACKET_VNET_HDR only for the header's hdr_len: set to the frame's length, it makes the kernel copy the whole
    // frame into the skb's linear area. Without it, all but the Ethernet header would be page fragments of the
    // ring, which a veth (or any forwarding device) copies again into fresh pages before it delivers them.
    // PACKET_LOSS: a slot the kernel cannot parse is skipped instead of stopping the ring (frames queued here are
    // always well formed: at least an Ethernet header, no larger than a slot).
    if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &version, sizeof version) < 0 ||
        setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one) < 0 ||
        setsockopt(fd, SOL_PACKET, PACKET_LOSS, &one, sizeof one) < 0) goto fail;
    (void)setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one);
    // Slots stay charged to the socket until the receiver frees their skbs (see kiln_packet_open).
    int sndbuf = 4 << 20;
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf) < 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    if (setsockopt(fd, SOL_PACKET, PACKET_TX_RING, &req, sizeof req) < 0) goto fail;
    size_t length = (size_t)r->frame_size * r->frame_count;
    void *map = mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) goto fail;
    struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_protocol = 0, .sll_ifindex = ifindex};
    if (bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0) { int e = errno; munmap(map, length); errno = e; goto fail; }
    r->kind = KILN_TX_PACKET;
    r->fd = fd;
    r->map = map;
    r->length = length;
    return 0;
fail:;
    int e = -errno;
    close(fd);
    return e;
}

static int packet_add(kiln_txring *r, const struct edited_frame *f) {
    uint32_t out = f->length;
    if (out + KILN_VNET_HDR_LEN > r->frame_size - DATA_OFFSET) return -EMSGSIZE;
    struct tpacket2_hdr *h = slot(r, r->head);
    if (status_of(h) != TP_STATUS_AVAILABLE) return -ENOBUFS;
    uint8_t *v = (uint8_t *)h + DATA_OFFSET;
    // No flags, no GSO; hdr_len (little-endian, bytes 2-3) = the whole frame.
    memset(v, 0, KILN_VNET_HDR_LEN);
    v[2] = (uint8_t)out; v[3] = (uint8_t)(out >> 8);
    copy_frame(v + KILN_VNET_HDR_LEN, f);
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

static int packet_send(kiln_txring *r) {
    unsigned left = r->queued;
    for (int waits = 0;; waits++) {
        ssize_t sent = send(r->fd, NULL, 0, MSG_DONTWAIT);
        int err = sent < 0 ? errno : 0;
        if (err == EINTR) { waits--; continue; }
        left = untaken(r);
        if (left == 0) break;
        // The send buffer is full (the kernel stopped early, or said EAGAIN): wait briefly for the receivers to
        // free some skbs, as for a sendmmsg batch; any other error ends the attempt.
        if ((err == 0 || err == EAGAIN || err == ENOBUFS) && waits < 4) { wait_writable(r->fd); continue; }
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

// ---- AF_XDP ----

static void *map_ring(int fd, size_t length, off_t offset) {
    void *m = mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, offset);
    return m == MAP_FAILED ? NULL : m;
}

static void xdp_unmap(kiln_txring *r) {
    if (r->tx_map) munmap(r->tx_map, r->tx_length);
    if (r->cq_map) munmap(r->cq_map, r->cq_length);
    if (r->fq_map) munmap(r->fq_map, r->fq_length);
    if (r->umem) munmap(r->umem, r->umem_length);
    r->tx_map = r->cq_map = r->fq_map = NULL;
    r->umem = NULL;
}

static int xdp_open(kiln_txring *r, int ifindex) {
    unsigned n = 1;
    while (n < r->frame_count) n <<= 1;  // ring sizes are powers of two
    int fd = socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    r->fd = fd;
    r->frame_count = n;
    r->umem_length = (size_t)n * r->frame_size;
    void *umem = mmap(NULL, r->umem_length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (umem == MAP_FAILED) goto fail;
    r->umem = umem;
    struct xdp_umem_reg reg = {.addr = (uintptr_t)umem, .len = r->umem_length, .chunk_size = r->frame_size};
    // The fill ring is required by bind but unused: this socket only transmits (receiving needs an XDP program).
    int size = (int)n, fill = 2;
    if (setsockopt(fd, SOL_XDP, XDP_UMEM_REG, &reg, sizeof reg) < 0 ||
        setsockopt(fd, SOL_XDP, XDP_UMEM_FILL_RING, &fill, sizeof fill) < 0 ||
        setsockopt(fd, SOL_XDP, XDP_UMEM_COMPLETION_RING, &size, sizeof size) < 0 ||
        setsockopt(fd, SOL_XDP, XDP_TX_RING, &size, sizeof size) < 0) goto fail;
    // In-flight skbs are charged to the socket as on the packet sockets.
    int sndbuf = 4 << 20;
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf) < 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    struct xdp_mmap_offsets off;
    socklen_t off_length = sizeof off;
    if (getsockopt(fd, SOL_XDP, XDP_MMAP_OFFSETS, &off, &off_length) < 0) goto fail;
    r->tx_length = off.tx.desc + n * sizeof(struct xdp_desc);
    r->cq_length = off.cr.desc + n * sizeof(uint64_t);
    r->fq_length = off.fr.desc + (size_t)fill * sizeof(uint64_t);
    if (!(r->tx_map = map_ring(fd, r->tx_length, XDP_PGOFF_TX_RING)) ||
        !(r->cq_map = map_ring(fd, r->cq_length, XDP_UMEM_PGOFF_COMPLETION_RING)) ||
        !(r->fq_map = map_ring(fd, r->fq_length, XDP_UMEM_PGOFF_FILL_RING))) goto fail;
    r->tx_producer = (uint32_t *)((uint8_t *)r->tx_map + off.tx.producer);
    r->tx_consumer = (uint32_t *)((uint8_t *)r->tx_map + off.tx.consumer);
    r->tx_descs = (struct xdp_desc *)((uint8_t *)r->tx_map + off.tx.desc);
    r->cq_producer = (uint32_t *)((uint8_t *)r->cq_map + off.cr.producer);
    r->cq_consumer = (uint32_t *)((uint8_t *)r->cq_map + off.cr.consumer);
    struct sockaddr_xdp sxdp = {.sxdp_family = AF_XDP, .sxdp_ifindex = (uint32_t)ifindex, .sxdp_queue_id = 0,
                                .sxdp_flags = XDP_COPY};
    if (bind(fd, (struct sockaddr *)&sxdp, sizeof sxdp) < 0) goto fail;
    r->kind = KILN_TX_XDP;
    return 0;
fail:;
    int e = -errno;
    xdp_unmap(r);
    close(fd);
    return e;
}

// Reads back completions: their chunks are free again.
static inline void xdp_reap(kiln_txring *r) {
    uint32_t produced = __atomic_load_n(r->cq_producer, __ATOMIC_ACQUIRE);
    uint32_t consumed = *r->cq_consumer;
    if (produced != consumed) {
        r->outstanding -= produced - consumed;
        __atomic_store_n(r->cq_consumer, produced, __ATOMIC_RELEASE);
    }
}

static int xdp_add(kiln_txring *r, const struct edited_frame *f) {
    if (f->length > r->frame_size) return -EMSGSIZE;
    if (r->outstanding + r->queued >= r->frame_count) {
        xdp_reap(r);
        if (r->outstanding + r->queued >= r->frame_count) return -ENOBUFS;
    }
    uint32_t index = r->producer & (r->frame_count - 1);
    copy_frame(r->umem + (size_t)index * r->frame_size, f);
    r->tx_descs[index] = (struct xdp_desc){.addr = (uint64_t)index * r->frame_size, .len = f->length};
    r->producer++;
    return (int)++r->queued;
}

static int xdp_send(kiln_txring *r) {
    if (r->queued) {
        __atomic_store_n(r->tx_producer, r->producer, __ATOMIC_RELEASE);
        r->outstanding += r->queued;
        r->queued = 0;
    }
    // The kernel takes up to 32 descriptors per call and says EAGAIN when more are left, and it publishes its
    // consumer index only once it has run out of descriptors; so each call's return says whether to call again,
    // not the ring. EAGAIN also means a full send buffer or device queue: past the calls the ring needs, wait.
    uint32_t left = r->producer - __atomic_load_n(r->tx_consumer, __ATOMIC_ACQUIRE);
    int lost = 0, calls = (int)(left / 32) + 2, waits = 0;
    for (;;) {
        ssize_t sent = send(r->fd, NULL, 0, MSG_DONTWAIT);
        int err = sent < 0 ? errno : 0;
        if (err == 0) break;  // nothing left that the kernel could take
        if (err == EINTR) continue;
        // EBUSY: the driver dropped the frame just taken (a down link, a full queue); the rest still go.
        if (err == EBUSY) { lost++; continue; }
        if (err != EAGAIN && err != ENOBUFS) break;
        if (calls-- > 0) continue;
        if (waits++ == 4) break;
        wait_writable(r->fd);
    }
    // What is still on the ring (a published descriptor cannot be taken back) goes with the next send;
    // kiln_txring_pending tells the loop to make one.
    xdp_reap(r);
    return lost;
}

// ---- the interface ----

kiln_txring *kiln_txring_open(int ifindex, unsigned frame_size, unsigned frame_count, int kinds, int *error) {
    kiln_txring *r = calloc(1, sizeof *r);
    if (!r) { *error = -ENOMEM; return NULL; }
    int e = -EINVAL;
    if (kinds & KILN_TX_XDP) {
        *r = (kiln_txring){.frame_size = frame_size, .frame_count = frame_count};
        if ((e = xdp_open(r, ifindex)) == 0) return r;
    }
    if (kinds & KILN_TX_PACKET) {
        *r = (kiln_txring){.frame_size = frame_size, .frame_count = frame_count};
        if ((e = packet_open(r, ifindex)) == 0) return r;
    }
    free(r);
    *error = e;
    return NULL;
}

void kiln_txring_free(kiln_txring *r) {
    if (!r) return;
    if (r->kind == KILN_TX_XDP) xdp_unmap(r); else munmap(r->map, r->length);
    close(r->fd);
    free(r);
}

int kiln_txring_kind(const kiln_txring *r) { return r->kind; }
int kiln_txring_queued(const kiln_txring *r) { return (int)r->queued; }

int kiln_txring_add(kiln_txring *r, const void *frame, uint32_t length, int action, uint16_t tci) {
    // The same tag edits as kiln_txbatch_add, made while copying.
    struct edited_frame f;
    edit_frame(&f, frame, length, action, tci);
    if (f.length < ETH_HLEN) return -EINVAL;
    return r->kind == KILN_TX_XDP ? xdp_add(r, &f) : packet_add(r, &f);
}

int kiln_txring_send(kiln_txring *r) {
    if (r->kind == KILN_TX_XDP) return r->queued || kiln_txring_pending(r) ? xdp_send(r) : 0;
    return r->queued ? packet_send(r) : 0;
}

int kiln_txring_pending(const kiln_txring *r) {
    return r->kind == KILN_TX_XDP && __atomic_load_n(r->tx_consumer, __ATOMIC_ACQUIRE) != r->producer;
}

int kiln_txring_wait(kiln_txring *r) {
    for (int waits = 0;; waits++) {
        if (r->kind == KILN_TX_XDP) {
            xdp_reap(r);
            if (r->outstanding + r->queued < r->frame_count) return 0;
        } else if (status_of(slot(r, r->head)) == TP_STATUS_AVAILABLE) {
            return 0;
        }
        if (waits == 4) return -EAGAIN;
        wait_writable(r->fd);
    }
}

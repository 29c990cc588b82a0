#define _GNU_SOURCE
#include "CKilnShims.h"
#include "sendbatch.h"
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct kiln_udpbatch {
    uint32_t size;
    uint8_t *data;
    uint32_t lengths[KILN_UDP_BATCH];
    struct sockaddr_in6 names[KILN_UDP_BATCH];
    struct iovec iov[KILN_UDP_BATCH];
    struct mmsghdr msgs[KILN_UDP_BATCH];
};

kiln_udpbatch *kiln_udpbatch_new(uint32_t slot_size) {
    kiln_udpbatch *b = calloc(1, sizeof(struct kiln_udpbatch));
    if (!b) return NULL;
    // 16-byte aligned slots of a 16-byte multiple, so each slot's header and payload stay aligned.
    b->size = (slot_size + 15u) & ~15u;
    if (posix_memalign((void **)&b->data, 16, (size_t)b->size * KILN_UDP_BATCH) != 0) { free(b); return NULL; }
    return b;
}

void kiln_udpbatch_free(kiln_udpbatch *b) {
    if (!b) return;
    free(b->data);
    free(b);
}

uint8_t *kiln_udpbatch_slot(kiln_udpbatch *b, int i) { return b->data + (size_t)b->size * (size_t)i; }
void *kiln_udpbatch_address(kiln_udpbatch *b, int i) { return &b->names[i]; }
uint32_t kiln_udpbatch_length(const kiln_udpbatch *b, int i) { return b->lengths[i]; }

int kiln_udpbatch_recv(int fd, kiln_udpbatch *b) {
    for (int i = 0; i < KILN_UDP_BATCH; i++) {
        b->iov[i].iov_base = kiln_udpbatch_slot(b, i);
        b->iov[i].iov_len = b->size;
        memset(&b->msgs[i].msg_hdr, 0, sizeof b->msgs[i].msg_hdr);
        b->msgs[i].msg_hdr.msg_name = &b->names[i];
        b->msgs[i].msg_hdr.msg_namelen = sizeof b->names[i];
        b->msgs[i].msg_hdr.msg_iov = &b->iov[i];
        b->msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int r;
    do { r = recvmmsg(fd, b->msgs, KILN_UDP_BATCH, MSG_DONTWAIT, NULL); } while (r < 0 && errno == EINTR);
    if (r < 0) return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -errno;
    for (int i = 0; i < r; i++) {
        // A truncated datagram (larger than a slot) is reported as such and dropped by the caller's length checks.
        b->lengths[i] = (b->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) ? 0 : b->msgs[i].msg_len;
    }
    return r;
}

void kiln_udpbatch_set_length(kiln_udpbatch *b, int i, uint32_t length) { b->lengths[i] = length; }

int kiln_udpbatch_send(int fd, kiln_udpbatch *b, int count) {
    if (count > KILN_UDP_BATCH) count = KILN_UDP_BATCH;
    int total = 0;
    for (int i = 0; i < count; i++) {
        if (b->lengths[i] == 0) continue;
        b->iov[total].iov_base = kiln_udpbatch_slot(b, i);
        b->iov[total].iov_len = b->lengths[i];
        memset(&b->msgs[total].msg_hdr, 0, sizeof b->msgs[total].msg_hdr);
        b->msgs[total].msg_hdr.msg_name = &b->names[i];
        b->msgs[total].msg_hdr.msg_namelen = sizeof b->names[i];
        b->msgs[total].msg_hdr.msg_iov = &b->iov[total];
        b->msgs[total].msg_hdr.msg_iovlen = 1;
        b->lengths[i] = 0;
        total++;
    }
    return kiln_sendmmsg_all(fd, b->msgs, total);
}

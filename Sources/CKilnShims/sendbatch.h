// Internal to CKilnShims: what the switch's transmit paths and the VPN's UDP batches share.
#ifndef KILN_SENDBATCH_H
#define KILN_SENDBATCH_H
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

// Sends msgs[0..<total] with sendmmsg(MSG_DONTWAIT). When the send buffer is full it waits up to 4 × 2 ms for
// room before giving up on a message; a message the socket refuses is dropped and the rest still go.
// Returns how many were sent, or -errno when none was and one failed.
int kiln_sendmmsg_all(int fd, struct mmsghdr *msgs, int total);

// The one definition of a frame's tag edit (`action`: 0 as is, 1 pop the tag at offset 12, 2 push a tag with `tci`,
// 3 replace the tag's TCI; a frame too short for its edit goes as is): fills `v` with the frame's bytes after it and
// returns the number of iovecs (1 to 3). `tag` holds the 4 bytes of a pushed or replaced tag. The sendmmsg batch
// sends these iovecs; the transmit rings copy them into a slot.
static inline int kiln_frame_iovecs(struct iovec *v, uint8_t *tag, const uint8_t *p, uint32_t length, int action,
                                    uint16_t tci) {
    if (action == 0 || length < 12 || ((action == 1 || action == 3) && length < 16)) {
        v[0].iov_base = (void *)p; v[0].iov_len = length;
        return 1;
    }
    if (action == 1) {
        v[0].iov_base = (void *)p; v[0].iov_len = 12;
        v[1].iov_base = (void *)(p + 16); v[1].iov_len = length - 16;
        return 2;
    }
    tag[0] = 0x81; tag[1] = 0x00; tag[2] = (uint8_t)(tci >> 8); tag[3] = (uint8_t)tci;
    uint32_t rest = action == 2 ? 12 : 16;
    v[0].iov_base = (void *)p; v[0].iov_len = 12;
    v[1].iov_base = tag; v[1].iov_len = 4;
    v[2].iov_base = (void *)(p + rest); v[2].iov_len = length - rest;
    return 3;
}

#endif

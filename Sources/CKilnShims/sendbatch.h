// Internal to CKilnShims: the sendmmsg loop the switch's transmit batches and the VPN's UDP batches share.
#ifndef KILN_SENDBATCH_H
#define KILN_SENDBATCH_H
#include <sys/socket.h>

// Sends msgs[0..<total] with sendmmsg(MSG_DONTWAIT). When the send buffer is full it waits up to 4 × 2 ms for
// room before giving up on a message; a message the socket refuses is dropped and the rest still go.
// Returns how many were sent, or -errno when none was and one failed.
int kiln_sendmmsg_all(int fd, struct mmsghdr *msgs, int total);

#endif

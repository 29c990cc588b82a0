#pragma once
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>
#include <signal.h>

// Tiny C where Swift cannot reach. Every function returns >= 0 on success or -errno.

/// finit_module(2): load a kernel module from an open file.
int kiln_finit_module(int fd, const char *params, int flags);
/// Create or attach a TUN (tap == 0) or TAP (tap == 1) device via TUNSETIFF; returns the fd. `name` is in/out (IFNAMSIZ).
int kiln_tun_open(char *name, int tap, int persist);
/// reboot(2) with LINUX_REBOOT_CMD_POWER_OFF (cmd 0) or LINUX_REBOOT_CMD_RESTART (cmd 1).
int kiln_reboot(int cmd);
/// ioctl(SIOCGIFINDEX) on any socket: interface index by name.
int kiln_if_index(const char *name);
/// ioctl(TIOCSCTTY) to make a terminal the controlling one of this session.
int kiln_set_ctty(int fd);
/// True once the constructor has mounted /proc and /dev for a PID 1.
int kiln_early_mounts_done(void);
/// signalfd(2) with SFD_CLOEXEC (and SFD_NONBLOCK when `nonblocking`); Glibc's Swift module lacks <sys/signalfd.h>.
/// Each read yields a 128-byte struct signalfd_siginfo whose first field is the uint32 signal number.
int kiln_signalfd(const sigset_t *mask, int nonblocking);
/// setns(2) into the namespace file at `path` (e.g. /run/netns/NAME) with `nstype` (CLONE_NEWNET...), for the
/// calling thread only.
int kiln_setns_path(const char *path, int nstype);
/// pipe2(2) with O_CLOEXEC (pipe2 is a GNU extension missing from Glibc's Swift module). Returns 0 or -errno.
int kiln_pipe_cloexec(int fds[2]);
/// close_range(first, ~0U, 0): closes every descriptor from `first` up. Returns 0 or -errno.
int kiln_close_from(unsigned first);
/// fork + exec with what posix_spawn cannot do: PR_SET_PDEATHSIG. The child gets `fds[i]` as descriptor i for
/// i < nfds (at most 16; -1 keeps the parent's), nothing above, default signal dispositions, an empty mask, its
/// own session when `new_session`, and `death_signal` (0: none) when the *thread* that called this exits, so call
/// it from a thread that lives as long as the process. `search_path`: look `path` up in PATH. Returns the pid,
/// or -errno of whatever failed before exec, exec included.
int kiln_spawn(const char *path, char *const argv[], char *const envp[], const int *fds, int nfds,
               const char *cwd, int search_path, int new_session, int death_signal);

// ---- Fast-path switch: AF_PACKET TPACKET_V3 rings and batched transmit (KilnSwitch) ----
#include <linux/if_packet.h>

/// An AF_PACKET socket (ETH_P_ALL) bound to `ifindex`, promiscuous, ignoring its own outgoing frames, with a
/// TPACKET_V3 block-based RX ring of `block_count` blocks of `block_size` bytes mapped at `*ring`. A block is
/// handed over when full or after `timeout_ms`. Returns the fd or -errno.
int kiln_packet_open(int ifindex, unsigned block_size, unsigned block_count, unsigned frame_size,
                     unsigned timeout_ms, void **ring);
/// Creates or attaches to the TAP `name` (a 16-byte buffer, updated with the kernel's name), non-blocking, with a
/// virtio-net header before every frame read or written, so segments larger than the MTU and partial checksums
/// pass in both directions. Returns the fd or -errno.
int kiln_tap_open_vnet(char *name);
/// munmap of a ring from kiln_packet_open.
int kiln_packet_unmap(void *ring, size_t length);
/// The kernel's drop and packet counts since the last call (PACKET_STATISTICS, tpacket_stats_v3).
int kiln_packet_stats(int fd, unsigned *packets, unsigned *drops);

/// One frame located in an RX block: its bytes, length, VLAN metadata and the offset of the next frame.
struct kiln_frame {
    const uint8_t *data;
    uint32_t length;
    uint32_t next;       // offset from this frame's header to the next one (0 for the last)
    uint16_t tci;        // valid when vlan_valid
    uint8_t vlan_valid;  // TP_STATUS_VLAN_VALID: the kernel stripped an 802.1Q tag into tci
    uint8_t outgoing;    // sll_pkttype == PACKET_OUTGOING
    uint8_t csum_partial; // TP_STATUS_CSUMNOTREADY: the sender left the TCP/UDP checksum to the device
    uint8_t *vnet;       // the frame's virtio-net header (KILN_VNET_HDR_LEN bytes right before it), writable
    uint8_t truncated;   // the ring kept less than the whole frame (tp_snaplen < tp_len)
};

/// Size of struct virtio_net_hdr: flags, gso_type, hdr_len, gso_size, csum_start, csum_offset (little endian).
#define KILN_VNET_HDR_LEN 10

/// True when the block at `block` belongs to user space (TP_STATUS_USER), read with acquire ordering.
static inline int kiln_block_ready(const void *block) {
    const struct tpacket_block_desc *b = (const struct tpacket_block_desc *)block;
    return (__atomic_load_n(&b->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER) != 0;
}
/// Frames in a ready block.
static inline uint32_t kiln_block_count(const void *block) {
    return ((const struct tpacket_block_desc *)block)->hdr.bh1.num_pkts;
}
/// Offset of the first frame header in a ready block.
static inline uint32_t kiln_block_first(const void *block) {
    return ((const struct tpacket_block_desc *)block)->hdr.bh1.offset_to_first_pkt;
}
/// Returns a block to the kernel (release ordering: our reads of its frames are done).
static inline void kiln_block_release(void *block) {
    struct tpacket_block_desc *b = (struct tpacket_block_desc *)block;
    __atomic_store_n(&b->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
}
/// Describes the frame whose tpacket3_hdr is at `header`.
static inline struct kiln_frame kiln_block_frame(const void *header) {
    const struct tpacket3_hdr *h = (const struct tpacket3_hdr *)header;
    const struct sockaddr_ll *sll =
        (const struct sockaddr_ll *)((const uint8_t *)header + TPACKET_ALIGN(sizeof(struct tpacket3_hdr)));
    struct kiln_frame f;
    f.data = (const uint8_t *)header + h->tp_mac;
    f.length = h->tp_snaplen;
    f.next = h->tp_next_offset;
    f.vlan_valid = (h->tp_status & TP_STATUS_VLAN_VALID) ? 1 : 0;
    f.tci = (uint16_t)h->hv1.tp_vlan_tci;
    f.outgoing = sll->sll_pkttype == 4 /* PACKET_OUTGOING */;
    f.csum_partial = (h->tp_status & TP_STATUS_CSUMNOTREADY) ? 1 : 0;
    f.vnet = (uint8_t *)header + h->tp_mac - KILN_VNET_HDR_LEN;
    f.truncated = h->tp_snaplen < h->tp_len;
    return f;
}

/// A fixed batch of up to KILN_TX_BATCH frames for one port, sent with one sendmmsg(2). Frames are not copied:
/// tag changes are made with iovecs around the original bytes, which must stay valid until the send.
#define KILN_TX_BATCH 64
typedef struct kiln_txbatch kiln_txbatch;
/// `vnet`: the socket takes a virtio-net header before each frame (ring ports); 0 for a TAP.
kiln_txbatch *kiln_txbatch_new(int vnet);
void kiln_txbatch_free(kiln_txbatch *batch);
int kiln_txbatch_count(const kiln_txbatch *batch);
/// Queues a frame. `action`: 0 as is, 1 pop the tag at offset 12, 2 push a tag with `tci`, 3 replace the tag's
/// TCI. Returns the new count, or -ENOBUFS when the batch is full (send first).
/// `vnet` is the frame's virtio-net header as received (NULL: none, e.g. from the TAP); for a vnet batch it is
/// sent along with its offsets moved by a pushed or popped tag. -EMSGSIZE: a segment larger than the MTU for a
/// device without one.
int kiln_txbatch_add(kiln_txbatch *batch, const void *frame, uint32_t length, int action, uint16_t tci, const void *vnet);
/// Sends the batch on `fd` (sendmmsg, or one writev per frame when `use_writev`, for a TAP) and empties it.
/// Returns frames sent (fewer when the device refused some) or -errno if none went.
int kiln_txbatch_send(int fd, kiln_txbatch *batch, int use_writev);

/// A port's transmit ring, on a second socket of the interface that receives nothing. Frames are copied into its
/// fixed slots (tag changes made while copying) and one send(2) hands every queued slot to the kernel: no msghdr or
/// iovec is imported per frame. Two kinds: AF_XDP in copy mode (KILN_TX_XDP: the kernel builds a linear skb from each
/// slot and gives it straight to the driver) and, where AF_XDP is missing or refused, a TPACKET_V2 PACKET_TX_RING
/// (KILN_TX_PACKET). Carries frames without offload metadata only; GSO segments, partial checksums and frames larger
/// than a slot take a kiln_txbatch.
#define KILN_TX_XDP 1
#define KILN_TX_PACKET 2
typedef struct kiln_txring kiln_txring;
/// `kinds`: the kinds to try, in the order above. Returns NULL with *error set (a negative errno) when none opened.
kiln_txring *kiln_txring_open(int ifindex, unsigned frame_size, unsigned frame_count, int kinds, int *error);
void kiln_txring_free(kiln_txring *ring);
/// KILN_TX_XDP or KILN_TX_PACKET.
int kiln_txring_kind(const kiln_txring *ring);
/// Frames queued and not yet handed over by kiln_txring_send.
int kiln_txring_queued(const kiln_txring *ring);
/// Copies a frame into the next slot (`action` as for kiln_txbatch_add). Returns the queued count, -ENOBUFS when
/// the next slot is still the kernel's (send first), -EMSGSIZE when the frame does not fit a slot.
int kiln_txring_add(kiln_txring *ring, const void *frame, uint32_t length, int action, uint16_t tci);
/// Hands the queued frames to the kernel. When the socket's send buffer or the device is full it waits up to
/// 4 × 2 ms for room. Returns how many frames were lost: on a packet ring, slots still not taken are given back; on
/// AF_XDP, frames the driver dropped (what is still on its ring goes with the next send).
int kiln_txring_send(kiln_txring *ring);
/// Whether frames handed over are still on the ring, not yet taken by the kernel (AF_XDP under backpressure):
/// the next kiln_txring_send, even with nothing queued, sends them.
int kiln_txring_pending(const kiln_txring *ring);
/// After a send: waits up to 4 × 2 ms for the next slot to come back from the kernel (its skb still in flight,
/// e.g. a NIC's transmit completion). Returns 0 when it is free, -EAGAIN when not.
int kiln_txring_wait(kiln_txring *ring);

/// UDP datagrams in and out in batches (recvmmsg/sendmmsg) for the VPN's data path: KILN_UDP_BATCH slots of
/// `slot_size` bytes, each with a peer address (a sockaddr_in6, for a dual-stack socket). Allocated once per
/// thread; nothing is allocated or copied per datagram.
#define KILN_UDP_BATCH 32
typedef struct kiln_udpbatch kiln_udpbatch;
kiln_udpbatch *kiln_udpbatch_new(uint32_t slot_size);
void kiln_udpbatch_free(kiln_udpbatch *batch);
/// Slot `i`'s bytes (`slot_size` of them).
uint8_t *kiln_udpbatch_slot(kiln_udpbatch *batch, int i);
/// Slot `i`'s address: where its datagram came from after a receive, where it goes for a send.
void *kiln_udpbatch_address(kiln_udpbatch *batch, int i);
/// The length of slot `i`'s datagram after a receive.
uint32_t kiln_udpbatch_length(const kiln_udpbatch *batch, int i);
/// Receives up to KILN_UDP_BATCH datagrams without waiting, one per slot from slot 0. Returns how many
/// (0: none queued) or -errno.
int kiln_udpbatch_recv(int fd, kiln_udpbatch *batch);
/// Marks slot `i` for the next send with `length` bytes to its address (0: nothing to send from this slot).
void kiln_udpbatch_set_length(kiln_udpbatch *batch, int i, uint32_t length);
/// Sends the marked slots among the first `count` with sendmmsg (waiting briefly while the socket's buffer
/// is full, then dropping), and unmarks them. Returns datagrams sent or -errno if none went.
int kiln_udpbatch_send(int fd, kiln_udpbatch *batch, int count);

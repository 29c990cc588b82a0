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

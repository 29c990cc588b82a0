#pragma once
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>

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

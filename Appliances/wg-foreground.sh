#!/bin/sh
# wg-quick's userspace implementation for Kiln's topologies: wireguard-go in the foreground, in the background of
# this host's process group (so the run's teardown ends it with the host), returning once its socket is there.
wireguard-go -f "$1" >/dev/null 2>&1 &
i=0; while [ ! -S "/var/run/wireguard/$1.sock" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done

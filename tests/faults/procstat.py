"""Resource usage of a process from /proc (Linux): open fds, threads, RSS."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Usage:
    fds: int
    threads: int
    rss_kib: int
    sockets: int


def usage(pid: int) -> Usage:
    fd_dir = f"/proc/{pid}/fd"
    fds = os.listdir(fd_dir)
    sockets = 0
    for fd in fds:
        try:
            if os.readlink(f"{fd_dir}/{fd}").startswith("socket:"):
                sockets += 1
        except OSError:
            continue
    threads = rss = 0
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("Threads:"):
                threads = int(line.split()[1])
            elif line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return Usage(fds=len(fds), threads=threads, rss_kib=rss, sockets=sockets)

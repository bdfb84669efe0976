"""Children of the agent die with it (ffmpeg, ffprobe): ``preexec_fn`` for subprocesses."""

from __future__ import annotations

import ctypes
import os
import signal

_PR_SET_PDEATHSIG = 1
try:
    _LIBC: ctypes.CDLL | None = ctypes.CDLL("libc.so.6", use_errno=True)
except OSError:  # not glibc Linux: rely on process-group clean-up only
    _LIBC = None


def die_with_parent() -> None:
    """``preexec_fn``: the kernel SIGKILLs the child if the agent dies without cleaning up."""
    parent = os.getppid()
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # parent already gone between fork and prctl
        os._exit(1)

"""Exclusive use of the local stack, for the runs that cannot share it: a test session (its fault
suite restarts services) and a benchmark (its figures assume a quiet host).

    with exclusive_use(paths, "a test session", on_wait=print):
        ...   # nobody else holds the stack until this block ends

Two such runs on one stack at once fail each other in ways that look like product bugs (a replicator
that never catches up while another run restarts the broker; freshness tails from another run's
load). The second one waits for the first instead, saying who holds the stack. The lock is an
``flock`` on a file in the data folder: the kernel releases it when its holder exits, however it
exits, so a killed run never leaves the stack locked.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator

from compose.native.exceptions import StackBusy
from compose.native.paths import StackPaths

__all__ = ["WAIT_S", "exclusive_use"]

# How long a run waits for another to release the stack: a whole test session or benchmark run.
WAIT_S = 1800.0
_POLL_S = 2.0


@contextlib.contextmanager
def exclusive_use(
    paths: StackPaths, who: str, wait_s: float = WAIT_S, on_wait: Callable[[str], None] | None = None
) -> Iterator[None]:
    """Hold the stack for ``who`` while the block runs; wait up to ``wait_s`` for another holder."""
    paths.data_dir.mkdir(parents=True, exist_ok=True)
    lock = paths.exclusive_lock
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + wait_s
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _read(fd) or "another run"
                if time.monotonic() >= deadline:
                    raise StackBusy(
                        f"the local stack is in use by {holder} (lock {lock}); wait for it to end, "
                        f"or stop it, then run again"
                    ) from None
                if not told and on_wait is not None:
                    on_wait(f"waiting for the local stack: in use by {holder}")
                    told = True
                time.sleep(min(_POLL_S, max(0.01, deadline - time.monotonic())))
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{who} (pid {os.getpid()})".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock, if held


def _read(fd: int) -> str:
    return os.pread(fd, 200, 0).decode(errors="replace").strip()

"""`scv consume --processes N`: N replicator workers in one consumer group, each restarted when it dies.

    Supervisor(2, run_worker, settings.consumer).run()    # until SIGTERM/SIGINT; returns the exit code

Rules:
1. a worker that exits without being asked (a crash, a signal, an error) is started again in the same
   slot after a backoff: ``worker_restart_initial_s``, doubling per crash in a row up to
   ``worker_restart_max_s``, back to the initial delay once a worker has run ``worker_healthy_after_s``;
2. each slot keeps its metrics port (base, base+1, ...) and its static group membership
   (``group.instance.id``), so a restarted worker takes its partitions back at once, without waiting
   for the session timeout or a rebalance, and resumes from their committed offsets: a crash loses
   nothing, it re-applies what was not committed (harmless: write timestamps);
3. the worker exports ``scv_worker_restarts_total{worker}``: its slot's restarts so far, handed over at
   start (the supervisor itself serves no metrics; each restart shows as the counter's increase);
4. SIGTERM/SIGINT are forwarded to every worker, which drains its batch and commits; no worker is
   restarted after that, and the exit code is 0 only if every worker exited 0;
5. workers die with the supervisor (Linux: PR_SET_PDEATHSIG), so a killed supervisor leaves none behind;
6. a worker whose Kafka consumer was fenced for good exits with ``REJOIN_EXIT_CODE``: it is started
   again at once and not counted as a crash (log ``worker_rejoining``; its restarts counter moves).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import wait
from multiprocessing.context import SpawnProcess
from types import FrameType

import structlog

from consumer.exceptions import ConsumerFenced
from scv.config.settings import ConsumerSettings

__all__ = ["Supervisor", "WorkerSlot", "die_with_parent"]

log = structlog.get_logger(__name__)

REJOIN_EXIT_CODE = ConsumerFenced.REJOIN_EXIT_CODE


@dataclass(frozen=True)
class WorkerSlot:
    """What a worker needs to know about its place: passed to the worker function (picklable)."""

    index: int
    metrics_port: int
    group_instance_id: str
    restarts: int


@dataclass
class _Slot:
    index: int
    process: SpawnProcess | None = None
    started_at: float = 0.0
    restarts: int = 0
    crashes_in_a_row: int = 0
    start_at: float = 0.0


def die_with_parent() -> None:
    """Rule 5: ask Linux to SIGTERM this process when its parent dies (no-op elsewhere)."""
    with contextlib.suppress(Exception):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


class Supervisor:
    def __init__(self, count: int, worker: Callable[[WorkerSlot], None], config: ConsumerSettings) -> None:
        self._worker = worker
        self._config = config
        self._context = multiprocessing.get_context("spawn")
        self._slots = [_Slot(i) for i in range(count)]
        self._stopping = False
        prefix = config.group_instance_id or f"{config.group_id}-{socket.gethostname()}-{config.metrics_port}"
        self._instance_prefix = prefix

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        failed: set[int] = set()
        while True:
            now = time.monotonic()
            if not self._stopping:
                for slot in self._slots:
                    if slot.process is None and now >= slot.start_at:
                        self._start(slot)
            running = [slot for slot in self._slots if slot.process is not None]
            if self._stopping and not running:
                break
            pending = [slot.start_at - now for slot in self._slots if slot.process is None]
            timeout = max(0.05, min(pending)) if pending and not self._stopping else 1.0
            sentinels = {slot.process.sentinel: slot for slot in running if slot.process is not None}
            for sentinel in wait(list(sentinels), timeout=timeout):
                slot = sentinels[sentinel]  # type: ignore[index]
                if self._exited(slot):
                    failed.add(slot.index)
        return 1 if failed else 0

    def _stop(self, signum: int, _frame: FrameType | None) -> None:
        self._stopping = True
        log.info("supervisor_stopping", signal=signal.Signals(signum).name)
        for slot in self._slots:
            process = slot.process
            if process is not None and process.pid is not None and process.is_alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGTERM)

    def _start(self, slot: _Slot) -> None:
        spec = WorkerSlot(
            index=slot.index,
            metrics_port=self._config.metrics_port + slot.index if self._config.metrics_port else 0,
            group_instance_id=f"{self._instance_prefix}-{slot.index}",
            restarts=slot.restarts,
        )
        process = self._context.Process(target=self._worker, args=(spec,), name=f"replicator-{slot.index}")
        process.start()
        slot.process = process
        slot.started_at = time.monotonic()
        log.info("worker_started", worker=slot.index, pid=process.pid, restarts=slot.restarts)

    def _exited(self, slot: _Slot) -> bool:
        """Handle a worker's exit; True when it counts as a failure of the whole command."""
        process = slot.process
        assert process is not None
        process.join()
        code = process.exitcode
        slot.process = None
        if self._stopping:
            if code != 0:
                log.error("worker_failed_while_stopping", worker=slot.index, exit_code=code)
            return code != 0
        ran_s = time.monotonic() - slot.started_at
        slot.restarts += 1
        if code == REJOIN_EXIT_CODE:
            # Its consumer was fenced (consumer/exceptions.py ConsumerFenced): a new one at once.
            slot.start_at = time.monotonic()
            log.warning("worker_rejoining", worker=slot.index, pid=process.pid, ran_s=round(ran_s, 1))
            return False
        healthy = ran_s >= self._config.worker_healthy_after_s
        slot.crashes_in_a_row = 1 if healthy else slot.crashes_in_a_row + 1
        delay = min(
            self._config.worker_restart_max_s,
            self._config.worker_restart_initial_s * 2 ** (slot.crashes_in_a_row - 1),
        )
        slot.start_at = time.monotonic() + delay
        how = f"signal {signal.Signals(-code).name}" if code is not None and code < 0 else f"exit code {code}"
        log.error(
            "worker_crashed",
            worker=slot.index,
            pid=process.pid,
            how=how,
            ran_s=round(ran_s, 1),
            restart_in_s=round(delay, 1),
            restarts=slot.restarts,
        )
        return False

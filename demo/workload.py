"""``scv demo workload``: a paced stream of realistic changes into the three demo databases.

    stats = run_workload(get_settings(), rate=1000, duration_s=30)
    stats.achieved_rate, stats.per_operation["balance_update"]
    run_workload(settings, rate=200, max_changes=500)   # a bounded burst, e.g. for a test

Pacing: change k (counted over all workers) is due at ``start + k / rate``; worker w takes the
changes k = w, w + W, w + 2W, ... and sleeps until each is due. A worker that cannot keep up runs
flat out, and the reported ``achieved_rate`` then says so: the driver never claims a rate it did not
reach. One change is one business operation (one committed transaction of one or more rows);
operations that find nothing to do for the picked customer are retried with another pick and do not
count.

Each worker owns the customers with ``customer_id % workers == w`` (plus those it onboards), so no
two transactions ever touch the same rows.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import psycopg
import structlog
from psycopg.rows import TupleRow

from demo.connect import connect
from demo.exceptions import DemoError, WorkloadFailed
from demo.model import database_names
from demo.operations import Changes, Operation, pick_operation
from scv.config.settings import Settings

__all__ = ["WorkloadProgress", "WorkloadStats", "run_workload"]

log = structlog.get_logger(__name__)

# Attempts at finding an applicable operation for one slot before giving the slot up as skipped.
_MAX_ATTEMPTS: Final = 8


@dataclass(frozen=True)
class WorkloadProgress:
    elapsed_s: float
    changes: int
    interval_rate: float  # changes/s since the previous report
    achieved_rate: float  # changes/s since the start


@dataclass(frozen=True)
class WorkloadStats:
    requested_rate: float
    workers: int
    elapsed_s: float
    changes: int
    skipped: int
    rows_inserted: int
    rows_updated: int
    rows_deleted: int
    per_operation: dict[str, int]

    @property
    def achieved_rate(self) -> float:
        return self.changes / self.elapsed_s if self.elapsed_s > 0 else 0.0


@dataclass
class _Tally:
    """One worker's counters; the lock makes a report's snapshot consistent."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    changes: int = 0
    skipped: int = 0
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    per_operation: Counter[str] = field(default_factory=Counter)

    def add(self, op: Operation, changes: Changes) -> None:
        with self.lock:
            self.changes += 1
            self.inserted += changes.inserted
            self.updated += changes.updated
            self.deleted += changes.deleted
            self.per_operation[op.name] += 1


class _Worker(threading.Thread):
    def __init__(
        self,
        *,
        index: int,
        workers: int,
        conns: dict[str, psycopg.Connection[TupleRow]],
        seed: int,
        stop: threading.Event,
    ) -> None:
        super().__init__(name=f"demo-workload-{index}", daemon=True)
        self.index = index
        self.workers = workers
        self.conns = conns
        self.schedule: _Schedule | None = None
        # A string seed is hashed with SHA-512 by random.Random, so it is stable across runs.
        self.rng = random.Random(f"{seed}/worker/{index}")
        self.stop = stop
        self.tally = _Tally()
        self.error: BaseException | None = None
        self.customers: list[int] = []

    def load_customers(self) -> None:
        rows = (
            self.conns["crm"]
            .execute(
                "SELECT customer_id FROM customers WHERE customer_id %% %s = %s ORDER BY customer_id",
                (self.workers, self.index),
            )
            .fetchall()
        )
        self.customers = [int(r[0]) for r in rows]

    def begin(self, schedule: _Schedule) -> None:
        self.schedule = schedule
        self.start()

    def run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # handed to the main thread, which raises it
            self.error = exc
            self.stop.set()

    def _loop(self) -> None:
        schedule = self.schedule
        assert schedule is not None, "begin() sets the schedule"
        k = self.index
        while not self.stop.is_set():
            due = schedule.due(k)
            if due is None:
                return
            delay = due - time.monotonic()
            if delay > 0 and self.stop.wait(delay):
                return
            # The deadline is wall-clock: a worker running behind stops on time too, and the shortfall
            # shows in the achieved rate instead of in an overrun.
            if schedule.expired(time.monotonic()):
                return
            self._one_change()
            k += self.workers

    def _one_change(self) -> None:
        rng = self.rng
        for _ in range(_MAX_ATTEMPTS):
            op = pick_operation(rng)
            customer_id = rng.choice(self.customers)
            conn = self.conns[op.database]
            try:
                if op.transactional:
                    with conn.transaction(), conn.cursor() as cur:
                        changes = op.run(cur, rng, customer_id)
                else:
                    with conn.cursor() as cur:
                        changes = op.run(cur, rng, customer_id)
            except psycopg.Error as exc:
                raise WorkloadFailed(
                    f"operation {op.name} on database {op.database} failed for customer {customer_id}: "
                    f"{exc}; the workload stopped (changes are never skipped on error)"
                ) from exc
            if changes.rows:
                if changes.new_customer is not None:
                    self.customers.append(changes.new_customer)
                self.tally.add(op, changes)
                return
        with self.tally.lock:
            self.tally.skipped += 1


@dataclass(frozen=True)
class _Schedule:
    start: float
    rate: float
    end: float | None
    max_changes: int | None

    def due(self, k: int) -> float | None:
        """When change ``k`` is due, or None when the run has no change ``k``."""
        if self.max_changes is not None and k >= self.max_changes:
            return None
        at = self.start + (k / self.rate if math.isfinite(self.rate) else 0.0)
        if self.end is not None and at >= self.end:
            return None
        return at

    def expired(self, now: float) -> bool:
        return self.end is not None and now >= self.end


def _snapshot(workers: list[_Worker]) -> tuple[int, int, int, int, int, Counter[str]]:
    changes = skipped = inserted = updated = deleted = 0
    per_op: Counter[str] = Counter()
    for w in workers:
        with w.tally.lock:
            changes += w.tally.changes
            skipped += w.tally.skipped
            inserted += w.tally.inserted
            updated += w.tally.updated
            deleted += w.tally.deleted
            per_op.update(w.tally.per_operation)
    return changes, skipped, inserted, updated, deleted, per_op


def default_workers(rate: float) -> int:
    # One worker sustains a few hundred commits/s; above that, connections wait on round trips, not
    # on the CPU, so more workers (threads; psycopg releases the GIL while waiting) add throughput.
    return 8 if not math.isfinite(rate) else max(1, min(8, math.ceil(rate / 150)))


def run_workload(
    settings: Settings,
    *,
    rate: float,
    duration_s: float | None = None,
    max_changes: int | None = None,
    seed: int = 0,
    workers: int | None = None,
    report_every_s: float = 5.0,
    on_progress: Callable[[WorkloadProgress], None] | None = None,
    synchronous_commit: bool = False,
    database_prefix: str = "",
) -> WorkloadStats:
    """Run changes at ``rate``/s until ``duration_s`` passes or ``max_changes`` are made.

    ``rate`` may be ``math.inf`` (as fast as the workers go). At least one of ``duration_s`` and
    ``max_changes`` is required. ``synchronous_commit=False`` (the default) sets the sessions'
    synchronous_commit off: the demo measures the CDC pipeline, not this machine's fsync latency,
    and WAL content (what Debezium decodes) is the same either way. ``database_prefix`` matches
    ``seed_demo``'s. Raises ``PostgresUnavailable`` or ``WorkloadFailed``.
    """
    if not rate > 0:
        raise ValueError(f"rate must be positive (changes/s), got {rate}")
    if duration_s is None and max_changes is None:
        raise ValueError("give duration_s or max_changes, or both; the workload must end")
    names = database_names(database_prefix)
    count = workers or default_workers(rate)
    stop = threading.Event()
    pool: list[_Worker] = []
    try:
        for index in range(count):
            worker = _Worker(index=index, workers=count, conns={}, seed=seed, stop=stop)
            pool.append(worker)  # before connecting, so the finally below closes what was opened
            for db, name in names.items():
                # Autocommit: an operation is one statement (its own transaction) unless it is
                # marked transactional, and then it opens a transaction block itself.
                worker.conns[db] = connect(settings, name, autocommit=True)
                if not synchronous_commit:
                    worker.conns[db].execute("SET synchronous_commit = off")
            worker.load_customers()
            if not worker.customers:
                raise DemoError(
                    f"worker {index} of {count} owns no customers (customer_id % {count} = {index}) in "
                    f"{names['crm']}; run `scv demo seed` first, or pass fewer workers"
                )
        start = time.monotonic()
        schedule = _Schedule(start, rate, None if duration_s is None else start + duration_s, max_changes)
        for worker in pool:
            worker.begin(schedule)
        log.info("workload_started", rate=rate, workers=count, duration_s=duration_s, max_changes=max_changes)
        last_time, last_changes = start, 0
        while alive := [w for w in pool if w.is_alive()]:
            alive[0].join(timeout=max(0.0, last_time + report_every_s - time.monotonic()))
            now = time.monotonic()
            if now - last_time >= report_every_s:
                changes = _snapshot(pool)[0]
                progress = WorkloadProgress(
                    elapsed_s=now - start,
                    changes=changes,
                    interval_rate=(changes - last_changes) / (now - last_time),
                    achieved_rate=changes / (now - start),
                )
                log.info(
                    "workload_progress",
                    elapsed_s=round(progress.elapsed_s, 1),
                    changes=changes,
                    interval_rate=round(progress.interval_rate, 1),
                    achieved_rate=round(progress.achieved_rate, 1),
                )
                if on_progress is not None:
                    on_progress(progress)
                last_time, last_changes = now, changes
        elapsed = time.monotonic() - start
    finally:
        stop.set()
        for worker in pool:
            if worker.ident is not None:  # started; a setup failure can leave later ones unstarted
                worker.join()
            for conn in worker.conns.values():
                conn.close()
    for worker in pool:
        if worker.error is not None:
            raise worker.error
    changes, skipped, inserted, updated, deleted, per_op = _snapshot(pool)
    stats = WorkloadStats(
        requested_rate=rate,
        workers=count,
        elapsed_s=elapsed,
        changes=changes,
        skipped=skipped,
        rows_inserted=inserted,
        rows_updated=updated,
        rows_deleted=deleted,
        per_operation=dict(sorted(per_op.items())),
    )
    log.info(
        "workload_finished",
        changes=changes,
        achieved_rate=round(stats.achieved_rate, 1),
        elapsed_s=round(elapsed, 2),
        skipped=skipped,
    )
    return stats

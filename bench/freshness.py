"""Freshness of a running replicator under a steady change rate, with where the time and the cores went.

    result = measure_freshness(settings, ports=[9450, 9451], rate=1000, seconds=60, warmup_s=30)
    result.freshness.p99, result.capture.p99, result.delivery.p99, result.cpu["cassandra"]

Freshness (source commit -> applied) is read from the replicators' own histograms, as an SRE would
read it, over the measured window only: bucket counts before and after, Prometheus-style
interpolation inside a bucket. It is split at the Kafka record's timestamp into capture (Debezium)
and delivery (the replicator), so a figure says which side is late. The load comes from pgbench
calling the demo operations server-side (demo/pgbench.py) unless ``driver="python"``: the Python
workload costs a quarter of a core at 1,000 changes/s on the machine it measures.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Literal

import httpx
import structlog
from cassandra import InvalidRequest
from cassandra.cluster import Session

from bench.cpu import CpuSampler
from bench.store_work import StoreWork, TableWork
from bench.timeline import FreshnessTimeline, Second, histogram_quantile, slow_seconds
from demo.pgbench import run_pgbench_workload
from demo.workload import run_workload
from scv.config.settings import Settings

__all__ = [
    "MIN_ACHIEVED",
    "RESOLUTION",
    "FreshnessResult",
    "Quantiles",
    "RateStep",
    "histogram_quantile",
    "measure_freshness",
    "next_rate",
    "wait_for_compactions",
]

log = structlog.get_logger(__name__)

Buckets = dict[float, float]
Driver = Literal["pgbench", "python"]


@dataclass(frozen=True)
class Quantiles:
    p50: float
    p90: float
    p99: float
    count: float


@dataclass(frozen=True)
class FreshnessResult:
    driver: str
    processes: int
    requested_rate: float
    achieved_rate: float
    seconds: float
    freshness: Quantiles
    capture: Quantiles
    delivery: Quantiles
    cpu: dict[str, float] = field(default_factory=dict)  # cores per component during the window
    # Threads runnable but waiting for a core, per component (bench/cpu.py), and the share of the
    # window in which some task waited (None without PSI): what CPU contention cost each component.
    cpu_wait: dict[str, float] = field(default_factory=dict)
    cpu_pressure: float | None = None
    # Partitions the store read, and its write requests, per applied change by table
    # (bench/store_work.py); empty when the store does not count them (ScyllaDB) or no keyspace was given.
    store_work: dict[str, TableWork] = field(default_factory=dict)
    window: tuple[float, float] = (0.0, 0.0)  # epoch seconds: start and end of the measured minute
    # Second by second from the start of the warm-up to the end (bench/timeline.py): when a tail was.
    timeline: list[Second] = field(default_factory=list)

    @property
    def slow_seconds(self) -> int:
        """Seconds of the measured window whose own p99 reached 1 s."""
        start, end = self.window
        return len([s for s in slow_seconds(self.timeline) if start < s.at <= end + 5])


@dataclass(frozen=True)
class RateStep:
    """One step of the search for the highest rate sustained with freshness p99 under a bound."""

    requested: float
    achieved: float
    p50: float
    p99: float
    passed: bool


def _scrape(ports: Sequence[int], metric: str) -> Buckets:
    """Bucket counts of ``metric`` summed over every label set and every replicator process."""
    buckets: Buckets = {}
    for port in ports:
        for line in httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text.splitlines():
            if line.startswith(f"{metric}_bucket{{"):
                le = line.split('le="', 1)[1].split('"', 1)[0]
                bound = math.inf if le == "+Inf" else float(le)
                buckets[bound] = buckets.get(bound, 0.0) + float(line.rsplit(" ", 1)[1])
    return buckets


def _quantiles(before: Buckets, after: Buckets) -> Quantiles:
    total = after.get(math.inf, 0.0) - before.get(math.inf, 0.0)
    p50, p90, p99 = (histogram_quantile(q, before, after) for q in (0.5, 0.9, 0.99))
    return Quantiles(p50, p90, p99, total)


def _drive(
    settings: Settings, driver: Driver, rate: float, seconds: float, seed: int, on_started: Callable[[], None]
) -> float:
    if driver == "pgbench":
        stats = run_pgbench_workload(settings, rate=rate, duration_s=seconds, on_started=on_started)
        return stats.achieved_rate
    on_started()
    return run_workload(settings, rate=rate, duration_s=seconds, seed=seed).achieved_rate


def _wait_until_started(started: threading.Event, load: Future[float]) -> None:
    """Until the load generator runs; its failure to start is raised here."""
    while not started.wait(0.5):
        if load.done():
            load.result()
            raise RuntimeError("the load generator ended before it started")


def measure_freshness(
    settings: Settings,
    *,
    ports: Sequence[int],
    rate: float,
    seconds: float,
    warmup_s: float,
    driver: Driver = "pgbench",
    store: tuple[Session, str] | None = None,
) -> FreshnessResult:
    """Drive ``rate`` changes/s for ``warmup_s`` (not counted: JIT, caches, schemas by id), then on
    for ``seconds``; quantiles come from the replicators on ``ports`` over those last ``seconds``.
    With ``store`` (a session and the replicators' keyspace), the store's work per applied change too.

    One load runs through the warm-up and the window. A load generator started anew for the window
    put its start (new connections, the demo's functions compiled in each new backend) and the idle
    pause before it inside the measured minute, every time: the reports' slow seconds at +2 and +3 s.
    A production stream does not stop and restart each minute."""
    metrics = ("scv_freshness_seconds", "scv_capture_seconds", "scv_delivery_seconds")
    with FreshnessTimeline(list(ports)) as timeline, ThreadPoolExecutor(1, thread_name_prefix="load") as pool:
        running = threading.Event()
        load = pool.submit(_drive, settings, driver, rate, warmup_s + seconds, 23, running.set)
        _wait_until_started(running, load)
        time.sleep(warmup_s)
        before = {m: _scrape(ports, m) for m in metrics}
        started = time.time()
        # Counted over the same span as the histograms, so both share the changes applied in it.
        with StoreWork(*store) if store else nullcontext() as work:
            with CpuSampler() as cpu:
                achieved = load.result()
            ended = time.time()
            # Changes committed at the end of the window are applied within a second or two when caught up.
            time.sleep(5)
            after = {m: _scrape(ports, m) for m in metrics}
    fresh, capture, delivery = (_quantiles(before[m], after[m]) for m in metrics)
    return FreshnessResult(
        driver,
        len(ports),
        rate,
        achieved,
        seconds,
        fresh,
        capture,
        delivery,
        cpu.shares(),
        cpu.waits(),
        cpu.pressure(),
        work.per_change(fresh.count) if work is not None else {},
        (started, ended),
        timeline.seconds(),
    )


# A step whose load generator produced less than this share of the rate asked did not run that rate.
MIN_ACHIEVED = 0.9
# The search stops once the highest pass and the lowest miss are this close (changes/s).
RESOLUTION = 100.0


def next_rate(
    steps: list[RateStep],
    step: float,
    min_achieved: float = MIN_ACHIEVED,
    floor: float = 250.0,
    resolution: float = RESOLUTION,
) -> float | None:
    """The rate of the next search step, or None when the search is over.

    Up by ``step`` while every step passes; down by halves while every step misses (not below
    ``floor``). Once one rate passed and another missed, the answer lies between the highest pass
    and the lowest miss above it: the search bisects that bracket until it is ``resolution`` wide, so
    the report names the rate to within ``resolution`` rather than to within a factor of two (a
    1,000 changes/s miss and a 250 pass said nothing of 400). A step whose load generator fell short
    of the rate asked ends it: the machine cannot produce that rate, so it cannot be sustained either.
    """
    if not steps:
        return None
    last = steps[-1]
    if last.achieved < min_achieved * last.requested:
        return None
    passed = [s.requested for s in steps if s.passed]
    missed = [s.requested for s in steps if not s.passed]
    if not missed:
        return max(passed) + step
    if not passed:
        lower = min(missed) / 2
        return lower if lower >= floor else None
    highest_pass = max(passed)
    above = [rate for rate in missed if rate > highest_pass]
    if not above:
        return highest_pass + step  # a lower rate missed where a higher one passed: noise; climb on
    lowest_miss = min(above)
    if lowest_miss - highest_pass <= resolution:
        return None
    return float(round((highest_pass + lowest_miss) / 2 / 25) * 25)


def wait_for_compactions(session: Session, quiet_s: float = 15.0, timeout_s: float = 900.0) -> float:
    """Wait until Cassandra has run no compaction for ``quiet_s`` (a drained backlog leaves minutes of
    it, throttled); returns the seconds waited. ScyllaDB has no such virtual table: returns at once."""
    started = time.monotonic()
    quiet_since = started
    while time.monotonic() - started < timeout_s:
        try:
            pools = session.execute(
                "SELECT active_tasks, pending_tasks FROM system_views.thread_pools "
                "WHERE name = 'CompactionExecutor'"
            ).one()
        except InvalidRequest as exc:  # no such virtual table (ScyllaDB, Cassandra 3): nothing to wait for
            log.info("compaction_status_unavailable", error=str(exc))
            return 0.0
        if pools is None:
            return 0.0
        if pools.active_tasks or pools.pending_tasks:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= quiet_s:
            return time.monotonic() - started
        time.sleep(2)
    log.warning("compactions_still_running", waited_s=round(time.monotonic() - started))
    return time.monotonic() - started

"""Freshness second by second, next to what the replicator did meanwhile: how a tail is explained.

    with FreshnessTimeline(ports=[9450, 9451]) as timeline:
        run_pgbench_workload(...)
    timeline.seconds()                                  # [Second(at=..., p99=0.41, delivery_p99=0.2, ...)]
    replicator_events(Path("replicator.log"), since)    # rebalances and cache warm-ups, with their times
    store_flushes(Path(".../logs/cassandra.log"), since)  # the store's memtable flushes, with their times

A p99 over a minute says that something was slow, not when: the per-second p99 of the replicators'
own histograms (bucket deltas between two scrapes) says when, and the replicator's log (JSON lines)
says what it was doing then (joining the group, warming its index cache, ...). The local store's log
says when it flushed a memtable: on this 2-core host a flush, and the compaction it starts, lined up
with the seconds whose p99 passed 1 s (ScyllaDB, in the compose stack, logs no such line).
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import TracebackType

import httpx

from bench.cpu import pressure_us

__all__ = [
    "Event",
    "FreshnessTimeline",
    "Second",
    "histogram_quantile",
    "replicator_events",
    "slow_seconds",
    "spent_between",
    "store_flushes",
]

Buckets = dict[float, float]

# Log events that mark a change in what a replicator process is doing (consumer/service.py).
_EVENTS = frozenset(
    {
        "worker_started",
        "replicator_started",
        "subscribed",
        "partitions_assigned",
        "partitions_revoked",
        "index_cache_warmed",
        "replicator_stopped",
    }
)


# Cassandra 5's line for every memtable flush it starts (ColumnFamilyStore), in the JVM's local time:
# INFO  [NativePoolCleaner] 2026-12-04 07:04:48,340 ColumnFamilyStore.java:1055 - Enqueuing flush of
# ks.customer_view, Reason: MEMTABLE_LIMIT, Usage: 52.798MiB (21%) on-heap, 100.929MiB (20%) off-heap
_FLUSH = re.compile(
    r"(?P<at>\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}),(?P<ms>\d{3}) \S+ - Enqueuing flush of (?P<table>\S+?), "
    r"Reason: (?P<reason>\w+)(?:, Usage: (?P<on>[\d.]+)MiB \(\d+%\) on-heap, (?P<off>[\d.]+)MiB)?"
)
# A freshness window is minutes old when its events are read: the log's tail holds it.
_TAIL_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class Second:
    at: float  # wall-clock time (epoch seconds) of the scrape that closes the second
    p99: float  # freshness p99 of the changes applied in this second (nan: none)
    delivery_p99: float
    applied: float
    # Seconds the replicators' loops spent in this second, by batch phase (decode, index_read, write,
    # ...) and in cyclic-GC pauses ("gc"), summed over the processes: what a slow second was doing.
    spent: dict[str, float] = field(default_factory=dict)
    # Share of the second in which a runnable task waited for a core (PSI "some"; nan: no PSI).
    pressure: float = math.nan


@dataclass(frozen=True)
class Event:
    at: float  # epoch seconds
    name: str
    detail: str


# Histograms whose ``_sum`` says where a replicator's loop spent its time, and the label naming the part.
_SPENT = {"scv_batch_phase_seconds_sum": "phase", "scv_gc_pause_seconds_sum": None}


@dataclass
class _Scrape:
    buckets: dict[str, Buckets]
    spent: dict[str, float]  # "write", "index_read", ..., "gc": seconds since each process started


def _spent_part(line: str) -> tuple[str, float] | None:
    """("write", 12.5) from ``scv_batch_phase_seconds_sum{phase="write"} 12.5``; ("gc", s) for GC."""
    for metric, label in _SPENT.items():
        if line.startswith(f"{metric}{{"):
            part = line.split(f'{label}="', 1)[1].split('"', 1)[0] if label else "gc"
            return part, float(line.rsplit(" ", 1)[1])
    return None


def _scrape(ports: list[int], metrics: tuple[str, ...]) -> _Scrape:
    found: dict[str, Buckets] = {m: {} for m in metrics}
    spent: dict[str, float] = {}
    for port in ports:
        try:
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
        except httpx.HTTPError:
            continue  # a process (re)starting: its second counts what the others applied
        for line in text.splitlines():
            if (part := _spent_part(line)) is not None:
                spent[part[0]] = spent.get(part[0], 0.0) + part[1]
                continue
            for metric in metrics:
                if line.startswith(f"{metric}_bucket{{"):
                    le = line.split('le="', 1)[1].split('"', 1)[0]
                    bound = math.inf if le == "+Inf" else float(le)
                    buckets = found[metric]
                    buckets[bound] = buckets.get(bound, 0.0) + float(line.rsplit(" ", 1)[1])
    return _Scrape(found, spent)


def histogram_quantile(q: float, before: Buckets, after: Buckets) -> float:
    """Prometheus' histogram_quantile over the bucket deltas between two scrapes (linear within a
    bucket; nan when nothing was observed)."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    if not counts or counts[-1] <= 0:
        return math.nan
    rank, previous_bound, previous_count = q * counts[-1], 0.0, 0.0
    for bound, count in zip(bounds, counts, strict=True):
        if count >= rank:
            if math.isinf(bound):
                return previous_bound
            span = count - previous_count
            return previous_bound + (bound - previous_bound) * ((rank - previous_count) / span if span else 1)
        previous_bound, previous_count = bound, count
    return bounds[-2] if len(bounds) > 1 else math.nan


class FreshnessTimeline:
    """Scrapes the replicators' freshness and delivery histograms, where their loops spent their
    time, and the host's CPU pressure, every ``every_s`` in a thread."""

    _METRICS = ("scv_freshness_seconds", "scv_delivery_seconds")

    def __init__(self, ports: list[int], every_s: float = 1.0) -> None:
        self._ports = ports
        self._every_s = every_s
        self._scrapes: list[tuple[float, _Scrape, int | None]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _poll(self) -> None:
        while True:
            self._scrapes.append((time.time(), _scrape(self._ports, self._METRICS), pressure_us()))
            if self._stop.wait(self._every_s):
                return

    def __enter__(self) -> FreshnessTimeline:
        self._thread = threading.Thread(target=self._poll, name="freshness-timeline", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, _type: type[BaseException] | None, _exc: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def seconds(self) -> list[Second]:
        out: list[Second] = []
        for (was, before, pressure_b), (at, after, pressure_a) in zip(
            self._scrapes, self._scrapes[1:], strict=False
        ):
            fresh = before.buckets["scv_freshness_seconds"], after.buckets["scv_freshness_seconds"]
            delivery = before.buckets["scv_delivery_seconds"], after.buckets["scv_delivery_seconds"]
            out.append(
                Second(
                    at,
                    histogram_quantile(0.99, *fresh),
                    histogram_quantile(0.99, *delivery),
                    fresh[1].get(math.inf, 0.0) - fresh[0].get(math.inf, 0.0),
                    spent_between(before.spent, after.spent),
                    _pressure_share(pressure_b, pressure_a, at - was),
                )
            )
        return out


def _pressure_share(before: int | None, after: int | None, seconds: float) -> float:
    """Share of ``seconds`` in which a runnable task waited for a core (nan without PSI)."""
    if before is None or after is None:
        return math.nan
    return min(1.0, (after - before) / 1e6 / max(seconds, 1e-9))


def spent_between(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """Seconds spent per part between two scrapes, largest first. A part whose sum went down (a
    process restarted between them) counts from zero."""
    spent = {part: total - before.get(part, 0.0) for part, total in after.items()}
    spent = {part: after[part] if seconds < 0 else seconds for part, seconds in spent.items()}
    return dict(sorted(((p, s) for p, s in spent.items() if s > 0), key=lambda item: -item[1]))


def slow_seconds(seconds: list[Second], bound_s: float = 1.0) -> list[Second]:
    """The seconds whose freshness p99 reached ``bound_s``."""
    return [s for s in seconds if not math.isnan(s.p99) and s.p99 >= bound_s]


def replicator_events(log: Path, since: float = 0.0) -> list[Event]:
    """Group and cache events from a replicator's JSON log (``SCV_LOG_FORMAT=json``), oldest first."""
    events: list[Event] = []
    if not log.exists():
        return events
    for line in log.read_text(errors="replace").splitlines():
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        name = record.get("event")
        if name not in _EVENTS or "timestamp" not in record:
            continue
        at = datetime.fromisoformat(str(record["timestamp"]).replace("Z", "+00:00")).timestamp()
        if at < since:
            continue
        detail = ", ".join(
            f"{k}={v}" for k, v in record.items() if k not in {"event", "timestamp", "level", "logger"}
        )
        events.append(Event(at, str(name), detail))
    return events


def store_flushes(log: Path, since: float = 0.0) -> list[Event]:
    """Memtable flushes the local store (Cassandra) started since ``since``, oldest first: the table,
    why (``MEMTABLE_LIMIT``: its share of memtable space filled up) and the memtable's size."""
    if not log.exists():
        return []
    with log.open("rb") as f:
        f.seek(max(0, log.stat().st_size - _TAIL_BYTES))
        text = f.read().decode(errors="replace")
    events: list[Event] = []
    for found in _FLUSH.finditer(text):
        # The JVM logs in the machine's local time, as a naive datetime's timestamp() reads it.
        at = datetime.strptime(found["at"], "%Y-%m-%d %H:%M:%S").timestamp() + int(found["ms"]) / 1000
        if at < since:
            continue
        detail = f"table={found['table']}, reason={found['reason']}"
        if found["on"] is not None:
            detail += f", memtable={found['on']} MiB on-heap + {found['off']} MiB off-heap"
        events.append(Event(at, "store_flush", detail))
    return events

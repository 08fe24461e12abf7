"""Build the benchmark's backlog: the demo systems of record, seeded large, snapshotted by Debezium,
topped up by the demo workload until the change topics hold at least ``min_events`` records."""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from connectors.onboard import add_source, remove_source
from connectors.progress import snapshot_bars
from connectors.spec import load_spec
from demo.secrets import export_demo_passwords
from demo.seed import seed_demo
from demo.workload import run_workload
from scv.config.settings import Settings
from scv.kafka.admin import KafkaAdmin

__all__ = [
    "DEMO_SOURCES",
    "ROWS_PER_CUSTOMER",
    "BackfillCapture",
    "backlog_topics",
    "discard_backlog",
    "end_offsets",
    "prepare_backlog",
]

DEMO_SOURCES = ("crm", "core", "care")
SPECS = Path(__file__).resolve().parents[1] / "connectors" / "sources"
# Rows the demo generator writes per customer over the published tables of crm, core and care
# (measured: 943,353 snapshot rows for 54,825 customers, seed 7): how `--backfill-rows` becomes a seed size.
ROWS_PER_CUSTOMER = 17.21


@dataclass(frozen=True)
class BackfillCapture:
    """Debezium's share of the initial snapshot: onboarding started -> last snapshot record in Kafka."""

    rows: int
    seconds: float
    customers: int

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def backlog_topics(settings: Settings) -> list[str]:
    with KafkaAdmin(settings.kafka.bootstrap_servers) as kafka:
        names = kafka.list_topics()
    return sorted(t for t in names if t.split(".", 1)[0] in DEMO_SOURCES and t.count(".") == 2)


def end_offsets(settings: Settings, topics: list[str]) -> dict[tuple[str, int], tuple[int, int]]:
    """(low, high) watermark of every partition of ``topics``."""
    with KafkaAdmin(settings.kafka.bootstrap_servers) as kafka:
        return kafka.watermarks(topics)


def _total(settings: Settings, topics: list[str]) -> int:
    return sum(high - low for low, high in end_offsets(settings, topics).values())


def _wait_stable(settings: Settings, console: Console, quiet_s: float = 10.0) -> tuple[int, float]:
    """Wait until the change topics stop growing (Debezium has shipped everything); returns the
    total and the monotonic time it last grew."""
    last, since = -1, time.monotonic()
    while True:
        total = _total(settings, backlog_topics(settings))
        if total != last:
            last, since = total, time.monotonic()
            console.print(f"  backlog: {total:,} records", highlight=False)
        elif time.monotonic() - since >= quiet_s:
            return total, since
        time.sleep(1)


def discard_backlog(settings: Settings) -> None:
    """Remove the demo sources the benchmark onboarded and delete their topics.

    The benchmark reseeds the demo databases under the demo's own source names: left behind, its
    connectors would keep streaming and its million records would replay into the demo's view.
    """
    for name in DEMO_SOURCES:
        with contextlib.suppress(Exception):  # not registered is fine
            remove_source(name, settings)
    topics = backlog_topics(settings)
    if topics:
        with KafkaAdmin(settings.kafka.bootstrap_servers) as kafka:
            kafka.delete_topics(topics)
        time.sleep(3)  # deletion completes asynchronously on the broker


def prepare_backlog(
    settings: Settings, customers: int, min_events: int, console: Console
) -> tuple[list[str], int, BackfillCapture]:
    """The backlog is the initial snapshot of the three demo sources (timed: Debezium's capture of a
    backfill), topped up by the demo workload if it holds fewer than ``min_events`` records."""
    console.rule("preparing the backlog")
    discard_backlog(settings)
    console.print(f"seeding {customers:,} customers into crm/core/care")
    seed_demo(settings, customers=customers, seed=7, reset=True)
    export_demo_passwords(settings)
    started = time.monotonic()
    with snapshot_bars(console) as on_progress:
        for name in DEMO_SOURCES:
            console.print(f"onboarding {name} (initial snapshot)")
            add_source(load_spec(SPECS / f"{name}.yaml"), settings, on_progress=on_progress, timeout_s=3600)
    total, last_grew = _wait_stable(settings, console)
    capture = BackfillCapture(total, last_grew - started, customers)
    console.print(f"  Debezium captured {total:,} snapshot rows in {capture.seconds:,.0f} s", highlight=False)
    if total < min_events:
        extra = math.ceil((min_events - total) * 1.05)
        console.print(f"running the demo workload for {extra:,} more changes")
        stats = run_workload(settings, rate=math.inf, max_changes=extra, seed=11)
        console.print(f"  workload achieved {stats.achieved_rate:,.0f} changes/s")
        total, _ = _wait_stable(settings, console)
    return backlog_topics(settings), total, capture

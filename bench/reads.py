"""Read-side benchmark: whole-view latency through the client, the asyncio client and HTTP, against the
bare driver in the same run, while the replicator applies a steady workload (bench/read_stack.py).

    python -m bench.reads [--seconds 6] [--rate 500]        # make bench-reads

For customers with 10, 100 and 1,000 entities, p50/p99 of:
- the bare driver: one prepared SELECT of the partition, rows materialised (the same token-aware,
  LOCAL_QUORUM, tuple-row session the client builds), sequentially and 32 in flight (asyncio);
- the sync client (sequential) and the asyncio client (32 in flight): ratio of p99 to the bare
  query's, target <= 1.2; "sync client, typed" also decodes every value (the client decodes a
  value when it is first read), which is what a channel using every attribute pays;
- HTTP (`scv serve`, keep-alive, sequential): p50 minus the bare query's, target <= 3 ms;
Sequential modes are interleaved (each customer read by every mode in turn) and the concurrent ones
take turns in one-second slices, so a burst of load elsewhere on the shared machine hits every mode
alike; then the throughput of many-customer reads (100 ids per call, async client and HTTP bulk) per core
of the reading process, and how long `scv view get` takes from start to exit. No figure is asserted:
the machine is shared, so the run prints and saves what it measured (bench/results/reads-latest.json).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import partial
from itertools import cycle
from pathlib import Path
from typing import Any

import httpx
from cassandra import ConsistencyLevel
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, ResponseFuture, Session
from cassandra.io.libevreactor import LibevConnection
from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy
from cassandra.query import PreparedStatement, tuple_factory
from rich.console import Console
from rich.table import Table

from bench.read_stack import ReadBench
from scv.client import AsyncCustomerViewClient, ClientSettings, CustomerViewClient
from scv.config.settings import get_settings

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
SIZES = {10: 20, 100: 20, 1000: 10}  # entities per customer -> customers of that size
CONCURRENCY = 32
_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Latency:
    size: int
    mode: str
    requests: int
    p50_ms: float
    p99_ms: float


@dataclass(frozen=True)
class Throughput:
    mode: str
    views_per_s: float
    cores: float  # of the process doing the reading (the bench for the client, the server for HTTP)

    @property
    def per_core(self) -> float:
        return self.views_per_s / self.cores if self.cores else 0.0


def _quantiles(samples: Sequence[float], size: int, mode: str) -> Latency:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return Latency(size, mode, len(samples), statistics.median(samples) * 1000, cuts[98] * 1000)


def interleaved(
    reads: dict[str, Callable[[str], Any]], ids: Sequence[str], seconds: float
) -> dict[str, list[float]]:
    """Latencies of one read after another, each customer read by every mode in turn, for ``seconds``
    per mode after a one-second warm-up: a burst of load elsewhere on the shared machine hits every
    mode alike, so their ratios stay readable even when the absolute figures move."""
    samples: dict[str, list[float]] = {mode: [] for mode in reads}
    customers = cycle(ids)
    warm_until = time.perf_counter() + 1.0
    stop = warm_until + seconds * len(reads)
    while time.perf_counter() < stop:
        customer = next(customers)
        for mode, read in reads.items():
            started = time.perf_counter()
            read(customer)
            if started >= warm_until:
                samples[mode].append(time.perf_counter() - started)
    return samples


async def alternating(
    reads: dict[str, Callable[[str], Awaitable[Any]]],
    ids: Sequence[str],
    seconds: float,
    slice_s: float = 1.0,
) -> dict[str, list[float]]:
    """Latencies of reads kept ``CONCURRENCY`` in flight, the modes taking turns in ``slice_s`` slices
    (``seconds`` per mode in all, after a one-second warm-up of each)."""
    samples: dict[str, list[float]] = {mode: [] for mode in reads}
    customers = cycle(ids)

    async def run(read: Callable[[str], Awaitable[Any]], until: float, into: list[float] | None) -> None:
        async def worker() -> None:
            while (started := time.perf_counter()) < until:
                await read(next(customers))
                if into is not None:
                    into.append(time.perf_counter() - started)

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))

    for read in reads.values():
        await run(read, time.perf_counter() + 1.0, None)
    for _ in range(max(1, round(seconds / slice_s))):
        for mode, read in reads.items():
            await run(read, time.perf_counter() + slice_s, samples[mode])
    return samples


class BareDriver:
    """The baseline: what an app would write with the driver alone, minus any decoding."""

    def __init__(self, settings: ClientSettings) -> None:
        profile = ExecutionProfile(
            load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc=settings.local_dc)),
            consistency_level=ConsistencyLevel.name_to_value[settings.consistency],
            request_timeout=settings.request_timeout_s,
            row_factory=tuple_factory,
        )
        self.cluster = Cluster(
            [*settings.contact_points],
            port=settings.port,
            protocol_version=settings.protocol_version,
            connection_class=LibevConnection,
            execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        )
        self.session: Session = self.cluster.connect()
        self.select: PreparedStatement = self.session.prepare(
            f"SELECT kind, source, table_name, entity_id, attributes, source_ts_us, applied_at "
            f"FROM {settings.keyspace}.customer_view WHERE customer_id = ?"
        )

    def read(self, customer_id: str) -> list[Any]:
        return list(self.session.execute(self.select, (customer_id,)))

    async def read_async(self, customer_id: str) -> list[Any]:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[list[Any]] = loop.create_future()
        future: ResponseFuture = self.session.execute_async(self.select, (customer_id,))
        future.add_callbacks(
            lambda rows: loop.call_soon_threadsafe(waiter.set_result, rows),
            lambda exc: loop.call_soon_threadsafe(waiter.set_exception, exc),
        )
        return await waiter


def _process_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def latencies(bench: ReadBench, seconds: float, console: Console) -> list[Latency]:
    results: list[Latency] = []
    settings = bench.client_settings
    bare = BareDriver(settings)
    headers = {"Authorization": f"Bearer {bench.token}"}
    try:
        with CustomerViewClient(settings) as client, httpx.Client(headers=headers, timeout=60) as http:

            def over_http(customer_id: str) -> None:
                http.get(f"{bench.api_url}/customers/{customer_id}").raise_for_status()

            for size, ids in bench.customers.items():
                reads: dict[str, Callable[[str], Any]] = {
                    "bare driver": bare.read,
                    "sync client": client.get_view,
                    "sync client, typed": partial(_typed, client),
                    "HTTP": over_http,
                }
                measured = interleaved(reads, ids, seconds)
                measured |= asyncio.run(_concurrently(bare, settings, ids, seconds))
                for mode in (*reads, "bare driver x32", "async client x32"):
                    latency = _quantiles(measured[mode], size, mode)
                    results.append(latency)
                    console.print(
                        f"  {size:>5} entities  {mode:<17} p50 {latency.p50_ms:7.2f} ms  "
                        f"p99 {latency.p99_ms:7.2f} ms  ({latency.requests:,} reads)",
                        highlight=False,
                    )
    finally:
        bare.cluster.shutdown()
    return results


def _typed(client: CustomerViewClient, customer_id: str) -> None:
    """A read whose every value is then decoded (Decimal, datetime, UUID, parsed JSON): the client
    decodes attributes when first read, so this is what a channel using them all pays."""
    for entities in client.get_view(customer_id).sections.values():
        for entity in entities:
            entity.attributes  # noqa: B018


async def _concurrently(
    bare: BareDriver, settings: ClientSettings, ids: Sequence[str], seconds: float
) -> dict[str, list[float]]:
    async with AsyncCustomerViewClient(settings) as client:
        return await alternating(
            {"bare driver x32": bare.read_async, "async client x32": client.get_view}, ids, seconds
        )


def throughput(bench: ReadBench, seconds: float) -> list[Throughput]:
    batches = [bench.many[i : i + 100] for i in range(0, len(bench.many), 100)]
    settings = bench.client_settings

    async def client_reads() -> tuple[int, float, float]:
        async with AsyncCustomerViewClient(settings) as client:
            views, wall, cpu = 0, time.perf_counter(), time.process_time()
            stop = wall + seconds
            for batch in cycle(batches):
                views += len(await client.get_many(batch))
                if time.perf_counter() >= stop:
                    break
            return views, time.perf_counter() - wall, time.process_time() - cpu

    views, wall, cpu = asyncio.run(client_reads())
    results = [Throughput("async client, 100 ids per call", views / wall, cpu / wall)]
    headers = {"Authorization": f"Bearer {bench.token}"}
    with httpx.Client(headers=headers, timeout=30) as http:
        views, wall, cpu = 0, time.perf_counter(), _process_cpu_s(bench.api_pid)
        stop = wall + seconds
        for batch in cycle(batches):
            response = http.post(f"{bench.api_url}/bulk/customers", json={"ids": batch})
            views += len(response.raise_for_status().json()["customers"])
            if time.perf_counter() >= stop:
                break
        wall = time.perf_counter() - wall
        results.append(
            Throughput(
                "HTTP bulk, 100 ids per request", views / wall, (_process_cpu_s(bench.api_pid) - cpu) / wall
            )
        )
    return results


def cli_start(bench: ReadBench, runs: int = 10) -> dict[str, float]:
    """Wall and CPU time of `scv view get ID --json`, from process start to exit (median of runs)."""
    env = {**os.environ, "SCV_STORE__KEYSPACE": bench.settings.store.keyspace}
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "scv", "view", "get", bench.customers[10][0], "--json"],
            cwd=REPO, env=env, check=True, capture_output=True,
        )  # fmt: skip
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return {
        "wall_median_s": statistics.median(walls),
        "wall_max_s": max(walls),
        "cpu_median_s": statistics.median(cpus),
    }


def report(results: list[Latency], rates: list[Throughput], cli: dict[str, float], console: Console) -> None:
    table = Table(title=f"read benchmark — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    for column in ("entities", "mode", "p50 ms", "p99 ms", "against the bare driver", "target"):
        table.add_column(column)
    by_key = {(r.size, r.mode): r for r in results}
    for r in results:
        versus, target = "", ""
        if r.mode == "sync client, typed":
            versus = f"p99 x{r.p99_ms / by_key[(r.size, 'bare driver')].p99_ms:.2f}"
            target = "(every value decoded)"
        elif r.mode in ("sync client", "async client x32"):
            bare = by_key[(r.size, "bare driver" if r.mode == "sync client" else "bare driver x32")]
            ratio = r.p99_ms / bare.p99_ms
            versus, target = f"p99 x{ratio:.2f}", "met" if ratio <= 1.2 else "missed (<= x1.2)"
        elif r.mode == "HTTP":
            delta = r.p50_ms - by_key[(r.size, "bare driver")].p50_ms
            versus, target = f"p50 +{delta:.2f} ms", "met" if delta <= 3 else "missed (<= +3 ms)"
        table.add_row(str(r.size), r.mode, f"{r.p50_ms:.2f}", f"{r.p99_ms:.2f}", versus, target)
    console.print(table)
    for rate in rates:
        console.print(
            f"{rate.mode}: {rate.views_per_s:,.0f} views/s using {rate.cores:.2f} cores "
            f"-> {rate.per_core:,.0f} views per core-second",
            highlight=False,
        )
    console.print(
        f"`scv view get ID --json`: {cli['wall_median_s'] * 1000:.0f} ms wall median "
        f"(max {cli['wall_max_s'] * 1000:.0f} ms), {cli['cpu_median_s'] * 1000:.0f} ms CPU",
        highlight=False,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="measured seconds per figure")
    parser.add_argument(
        "--rate", type=float, default=500.0, help="changes/s the replicator applies meanwhile"
    )
    parser.add_argument(
        "--many", type=int, default=500, help="10-entity customers for the many-customer reads"
    )
    args = parser.parse_args()
    console = Console()
    budget = (len(SIZES) * 6 * (args.seconds + 1.5)) + 2 * args.seconds + 120
    with ReadBench.up(get_settings(), SIZES, args.many, args.rate, budget, console) as bench:
        console.rule("whole-view reads while the replicator applies the workload")
        results = latencies(bench, args.seconds, console)
        rates = throughput(bench, args.seconds)
        cli = cli_start(bench)
    report(results, rates, cli, console)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "reads-latest.json").write_text(
        json.dumps(
            {
                "at": datetime.now(UTC).isoformat(),
                "rate": args.rate,
                "latency": [asdict(r) for r in results],
                "throughput": [asdict(r) | {"per_core": r.per_core} for r in rates],
                "cli": cli,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

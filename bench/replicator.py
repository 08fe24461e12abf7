"""Replicator benchmark: throughput over a >= 1M-event backlog against two ceilings, and freshness.

    python -m bench.replicator [--customers 50000] [--min-events 1000000] [--skip-prepare] [--keep-backlog]

In one run on this machine:
(a) sustained apply throughput of `scv consume` (1 process, then one per core) over the backlog;
(b) the ceilings beside it: a bare consume+decode loop and a bare CQL write loop (bench/ceilings.py);
(c) freshness p50/p90/p99 (source commit -> applied, split into capture and delivery) under a steady
    1,000 changes/s of the demo operations (pgbench calling them server-side, bench/freshness.py says
    why), on the replicator of (a) once it has applied the whole backlog and the store has compacted
    it (steady state): one process, then one per core in the same consumer group.
Every figure is printed with its ratio to the lower ceiling. The machine is shared and noisy: the
report quotes medians of per-second rates, and a JSON copy goes to bench/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.backlog import DEMO_SOURCES, backlog_topics, discard_backlog, end_offsets, prepare_backlog
from bench.ceilings import CeilingResult, bare_consume_decode, bare_cql_writes
from bench.freshness import FreshnessResult, measure_freshness, wait_for_compactions
from scv.config.settings import Settings, get_settings
from scv.kafka.admin import KafkaAdmin
from store.migrate import migrate
from store.registrations import RegistrationStore
from store.session import connect

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"


@dataclass(frozen=True)
class ReplicatorRun:
    processes: int
    events: int
    seconds: float
    median_rate: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def _committed(settings: Settings, group: str, offsets: dict[tuple[str, int], tuple[int, int]]) -> int:
    """Records of the backlog ``group`` has committed (its position past each partition's low mark)."""
    with KafkaAdmin(settings.kafka.bootstrap_servers) as kafka:
        committed = kafka.committed(group, sorted({topic for topic, _partition in offsets}))
    return sum(
        position - offsets[partition][0]
        for partition, position in committed.items()
        if position is not None and partition in offsets
    )


def _fresh_keyspace(settings: Settings) -> str:
    keyspace = f"scv_bench_{uuid.uuid4().hex[:6]}"
    cluster, session = connect(settings.store)
    try:
        migrate(session, keyspace, settings.store.replication_factor, settings.store.local_dc)
        source = RegistrationStore(session, settings.store.keyspace)
        target = RegistrationStore(session, keyspace)
        for registration in source.all():
            if registration.name in DEMO_SOURCES:
                target.put(registration.name, registration.mapping_json)
    finally:
        cluster.shutdown()
    return keyspace


def _start(processes: int, group: str, keyspace: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "SCV_CONSUMER__GROUP_ID": group,
        "SCV_STORE__KEYSPACE": keyspace,
        "SCV_CONSUMER__METRICS_PORT": str(port),
        "SCV_LOG_FORMAT": "json",
        "SCV_LOG_LEVEL": "WARNING",
    }
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "scv", "consume", "--processes", str(processes)],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def run_replicator(
    settings: Settings,
    processes: int,
    total: int,
    console: Console,
    keep_running: bool = False,
    max_seconds: float | None = None,
) -> tuple[ReplicatorRun, subprocess.Popen[bytes], str, str]:
    """Drain the backlog with `scv consume`; with ``max_seconds``, measure the sustained rate over
    that window of the drain instead of waiting for all of it (on a slow machine a full drain of
    1M events per configuration would take the better part of an hour)."""
    offsets = end_offsets(settings, backlog_topics(settings))
    group, keyspace = f"bench-{uuid.uuid4().hex[:6]}", _fresh_keyspace(settings)
    process = _start(processes, group, keyspace, 9450, RESULTS / f"replicator-{processes}p.log")
    samples: list[tuple[float, int]] = []
    try:
        while True:
            time.sleep(1.0)
            if process.poll() is not None:
                raise RuntimeError(f"replicator exited with {process.returncode}; see its log in {RESULTS}")
            done = _committed(settings, group, offsets)
            samples.append((time.perf_counter(), done))
            console.print(f"  scv consume x{processes}: {done:,}/{total:,}", end="\r", highlight=False)
            if done >= total:
                break
            if (
                max_seconds is not None
                and samples[0][1] < done
                and (samples[-1][0] - next(t for t, d in samples if d > 0) >= max_seconds)
            ):
                break
    finally:
        if not keep_running:
            process.send_signal(signal.SIGTERM)
            process.wait(60)
    console.print()
    started = next(i for i, (_, done) in enumerate(samples) if done > 0)
    window = samples[max(0, started - 1) :]
    # Offsets are committed once per batch (2,000 events), so 1 s samples are lumpy: rates are taken
    # over sliding 10 s windows and the median of those is quoted.
    span = 10
    rates = [(b[1] - a[1]) / (b[0] - a[0]) for a, b in zip(window, window[span:], strict=False)]
    steady = rates or [(window[-1][1] - window[0][1]) / max(1e-9, window[-1][0] - window[0][0])]
    run = ReplicatorRun(
        processes, window[-1][1] - window[0][1], window[-1][0] - window[0][0], statistics.median(steady)
    )
    return run, process, group, keyspace


def _drain(
    settings: Settings, group: str, total: int, process: subprocess.Popen[bytes], console: Console
) -> None:
    offsets = end_offsets(settings, backlog_topics(settings))
    while (done := _committed(settings, group, offsets)) < total:
        if process.poll() is not None:
            raise RuntimeError(f"replicator exited with {process.returncode}; see its log in {RESULTS}")
        console.print(f"  catching up before freshness: {done:,}/{total:,}", end="\r", highlight=False)
        time.sleep(2.0)
    console.print()


def _settle(settings: Settings, console: Console) -> float:
    """A long-running replicator's store is not compacting a freshly written million rows: wait
    until it has caught up with that (bounded), so freshness is measured in the steady state."""
    console.print("  waiting for the store to finish compacting the drained backlog")
    cluster, session = connect(settings.store)
    try:
        waited = wait_for_compactions(session)
    finally:
        cluster.shutdown()
    console.print(f"  store settled after {waited:.0f} s")
    return waited


def _freshness(
    settings: Settings, args: argparse.Namespace, ports: list[int], console: Console
) -> FreshnessResult:
    console.print(
        f"  freshness with {len(ports)} process(es): {args.freshness_warmup:.0f} s warm-up, then "
        f"{args.freshness_seconds:.0f} s at {args.freshness_rate:,.0f} changes/s ({args.freshness_driver})"
    )
    result = measure_freshness(
        settings,
        ports=ports,
        rate=args.freshness_rate,
        seconds=args.freshness_seconds,
        warmup_s=args.freshness_warmup,
        driver=args.freshness_driver,
    )
    f, c, d = result.freshness, result.capture, result.delivery
    console.print(
        f"  p50/p90/p99 freshness {f.p50 * 1000:,.0f}/{f.p90 * 1000:,.0f}/{f.p99 * 1000:,.0f} ms "
        f"(capture {c.p99 * 1000:,.0f}, delivery {d.p99 * 1000:,.0f} ms at p99)",
        highlight=False,
    )
    return result


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    process.wait(120)


def _cpu_table(results: list[FreshnessResult]) -> Table:
    table = Table(title="cores used during each freshness window (2.0 = the whole machine)")
    table.add_column("component")
    for result in results:
        table.add_column(f"{result.processes} process(es)")
    names = sorted({n for r in results for n in r.cpu}, key=lambda n: -max(r.cpu.get(n, 0) for r in results))
    for name in names:
        table.add_row(name, *(f"{r.cpu.get(name, 0.0):.2f}" for r in results))
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--min-events", type=int, default=1_000_000)
    parser.add_argument("--freshness-rate", type=float, default=1000.0)
    parser.add_argument("--freshness-seconds", type=float, default=60.0)
    parser.add_argument("--freshness-warmup", type=float, default=30.0)
    parser.add_argument("--freshness-driver", choices=("pgbench", "python"), default="pgbench")
    parser.add_argument("--skip-prepare", action="store_true", help="reuse the backlog already in Kafka")
    parser.add_argument(
        "--keep-backlog",
        action="store_true",
        help="leave the benchmark's sources and topics in place for a later --skip-prepare run",
    )
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=None,
        help="measure each replicator run over this window instead of a full drain",
    )
    parser.add_argument(
        "--cql-sample",
        type=int,
        default=None,
        help="rows written by the bare CQL ceiling (default: every row of the backlog)",
    )
    args = parser.parse_args()
    console = Console()
    settings = get_settings()
    RESULTS.mkdir(parents=True, exist_ok=True)
    # A freshly started stack has no keyspace yet: onboarding registers the sources there.
    cluster, session = connect(settings.store)
    try:
        store = settings.store
        migrate(session, store.keyspace, store.replication_factor, store.local_dc)
    finally:
        cluster.shutdown()

    if args.skip_prepare:
        topics = backlog_topics(settings)
        total = sum(h - lo for lo, h in end_offsets(settings, topics).values())
    else:
        topics, total = prepare_backlog(settings, args.customers, args.min_events, console)
    console.rule(f"backlog: {total:,} Debezium Avro records in {len(topics)} topics")

    # Rows for the CQL ceiling are kept from the first records only, so the decode loop stays bare.
    decode, rows = bare_consume_decode(settings, topics, total, keep_rows=args.cql_sample or total)
    console.print(f"ceiling consume+decode: {decode.rate:,.0f} records/s")
    cluster, session = connect(settings.store)
    try:
        cql = bare_cql_writes(session, settings.store.keyspace, rows, settings.consumer.write_concurrency)
    finally:
        cluster.shutdown()
    del rows
    console.print(f"ceiling CQL writes: {cql.rate:,.0f} rows/s")
    lower = min(decode.rate, cql.rate)

    # (a) one process: its rate over the measured window; then it applies the rest of the backlog, as
    # a long-running replicator would have, so its index (and its cache of it) knows every entity the
    # workload touches. (c) freshness on it, then on one process per core in the same group (the
    # deployment that uses the whole host), once the store has compacted the drain's writes.
    cores = os.cpu_count() or 1
    one, process, group, first_keyspace = run_replicator(
        settings, 1, total, console, keep_running=True, max_seconds=args.max_seconds
    )
    fresh: list[FreshnessResult] = []
    try:
        _drain(settings, group, total, process, console)
        _settle(settings, console)
        fresh.append(_freshness(settings, args, [9450], console))
    finally:
        _stop(process)
    if cores > 1:
        process = _start(cores, group, first_keyspace, 9450, RESULTS / f"replicator-{cores}p-fresh.log")
        try:
            fresh.append(_freshness(settings, args, [9450 + i for i in range(cores)], console))
        finally:
            _stop(process)
    many, _, _, second_keyspace = run_replicator(
        settings, cores, total, console, max_seconds=args.max_seconds
    )

    table = Table(title=f"replicator benchmark — {total:,} events, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    for column in ("figure", "value", "ratio to lower ceiling"):
        table.add_column(column)

    def row(name: str, rate: float) -> None:
        table.add_row(name, f"{rate:,.0f} events/s", f"{rate / lower:.2f}")

    row(decode.name + " (ceiling)", decode.rate)
    row(cql.name + " (ceiling)", cql.rate)
    row(f"scv consume, 1 process ({one.events:,} events)", one.rate)
    row("scv consume, 1 process (median of 10 s rates)", one.median_rate)
    row(f"scv consume, {cores} processes ({many.events:,} events)", many.rate)
    row(f"scv consume, {cores} processes (median of 10 s rates)", many.median_rate)
    for result in fresh:
        at = f"{result.processes} process(es) @ {result.achieved_rate:,.0f} changes/s"
        parts = (("freshness", result.freshness), ("capture", result.capture), ("delivery", result.delivery))
        for label, q in parts:
            table.add_row(
                f"{label} p50 / p90 / p99, {at}",
                f"{q.p50 * 1000:,.0f} / {q.p90 * 1000:,.0f} / {q.p99 * 1000:,.0f} ms",
                "",
            )
    console.print(table)
    console.print(_cpu_table(fresh))
    report = {
        "events": total,
        "ceilings": [asdict(decode) | {"rate": decode.rate}, asdict(cql) | {"rate": cql.rate}],
        "replicator": [asdict(one) | {"rate": one.rate}, asdict(many) | {"rate": many.rate}],
        "lower_ceiling": lower,
        "freshness": [asdict(result) for result in fresh],
        "at": datetime.now(UTC).isoformat(),
    }
    (RESULTS / "latest.json").write_text(json.dumps(report, indent=2))
    _drop_bench_data(settings, [first_keyspace, second_keyspace])
    if args.keep_backlog:
        console.print(
            "backlog kept for --skip-prepare; before `make demo`: "
            "`scv sources remove NAME --yes --delete-topics` for crm, core and care"
        )
    else:
        discard_backlog(settings)
        console.print("benchmark sources and topics removed; next: `scv demo seed --reset`, `make demo`")


def _drop_bench_data(settings: Settings, keyspaces: list[str]) -> None:
    # Millions of benchmark rows would otherwise stay in the local store and slow every later start.
    cluster, session = connect(settings.store)
    try:
        for keyspace in keyspaces:
            session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
        session.execute(f"DROP TABLE IF EXISTS {settings.store.keyspace}.bench_rows", timeout=120)
    finally:
        cluster.shutdown()


if __name__ == "__main__":
    main()


__all__ = ["CeilingResult", "ReplicatorRun", "main"]

"""Run the peer (kafka-connect-scylladb) on the benchmark's backlog: its events/s, then its freshness.

    result = run_peer(settings, Path("/work/peer/plugins/kafka-connect-scylladb"), backlog, options, console)
    result.drain.median_rate, result.freshness.probe.p99

The steps, in this order (each undone on the way out, whatever happened):
1. one CQL table per change topic in a fresh keyspace, made from the topic's registered schemas
   (bench/peer/tables.py: the connector's own table management fails on Cassandra 5);
2. a second Kafka Connect worker with the peer's plugin (bench/peer/worker.py);
3. the sink on the topics `scv consume` read, from their start (bench/peer/connector.py);
4. events/s: the sink's consumer group's committed offsets sampled every second until it has
   committed every record of the backlog the replicator drained (records written to the topics
   later, by the freshness runs, are not counted), the rate quoted as the replicator's is (the
   median of sliding 10 s windows);
5. freshness, once the sink has caught up with everything in the topics: the same change rate and
   load generator as the replicator's freshness run, measured with probe rows (bench/peer/probe.py);
6. cleanup: the connector, the worker and its internal topics, the sink's consumer group, the
   keyspace and the probe rows.
"""

from __future__ import annotations

import contextlib
import statistics
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rich.console import Console

from bench.cpu import tree_usage
from bench.groups import delete_groups
from bench.peer.connector import PeerNames, sink_config
from bench.peer.exceptions import PeerSchemaError, PeerSinkFailed
from bench.peer.probe import PROBE_TOPIC, FreshnessProbe, ProbeResult
from bench.peer.tables import PeerTable, collection_fields, peer_table, table_name
from bench.peer.worker import PeerWorker, peer_worker
from connectors.exceptions import ConnectError
from connectors.registry import RegistryClient
from demo.pgbench import run_pgbench_workload
from demo.workload import run_workload
from scv.config.settings import Settings
from scv.kafka.admin import KafkaAdmin
from store.session import connect

__all__ = [
    "PeerDrain",
    "PeerFreshness",
    "PeerOptions",
    "PeerResult",
    "backlog_committed",
    "failure_summary",
    "median_window_rate",
    "run_peer",
]

Partition = tuple[str, int]
Backlog = Mapping[Partition, tuple[int, int]]  # (low, high) of each partition when the backlog was built


@dataclass(frozen=True)
class PeerOptions:
    tasks: int = 1
    rest_port: int = 8093
    freshness_rate: float = 1000.0
    freshness_seconds: float = 60.0  # 0: no freshness run
    warmup_s: float = 30.0
    driver: Literal["pgbench", "python"] = "pgbench"
    drain_timeout_s: float = 3600.0
    catch_up_timeout_s: float = 600.0
    log_copy: Path | None = None


@dataclass(frozen=True)
class PeerDrain:
    events: int
    seconds: float  # first committed progress -> every backlog record committed
    median_rate: float  # median of sliding 10 s windows
    drained_after_s: float  # connector registered -> every backlog record committed
    cpu_seconds: float  # the peer worker's CPU over the drain (its JVM start not counted)
    peak_rss_bytes: int

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class PeerFreshness:
    requested_rate: float
    achieved_rate: float
    seconds: float
    probe: ProbeResult


@dataclass(frozen=True)
class PeerResult:
    tasks: int
    tables: tuple[str, ...]
    drain: PeerDrain
    freshness: PeerFreshness | None
    # `table.column` left out of the peer's rows: collections, which the connector cannot write.
    dropped: tuple[str, ...] = ()


def backlog_committed(backlog: Backlog, committed: Mapping[Partition, int | None]) -> int:
    """Records of the backlog the group has committed: past each partition's low mark, up to the
    backlog's high mark (later records, written after the backlog was built, are not counted)."""
    done = 0
    for partition, (low, high) in backlog.items():
        position = committed.get(partition)
        if position is not None:
            done += max(0, min(position, high) - low)
    return done


def median_window_rate(samples: list[tuple[float, int]], span: int = 10) -> float:
    """Median rate over sliding windows of ``span`` samples, from the sample before the first progress.

    Offsets are committed once per batch, so one-second samples are lumpy; the replicator's rate is
    quoted the same way (bench/replicator.py)."""
    started = next((i for i, (_, done) in enumerate(samples) if done > samples[0][1]), None)
    if started is None:
        return 0.0
    window = samples[max(0, started - 1) :]
    rates = [
        (b[1] - a[1]) / (b[0] - a[0]) for a, b in zip(window, window[span:], strict=False) if b[0] > a[0]
    ]
    if rates:
        return statistics.median(rates)
    elapsed = window[-1][0] - window[0][0]
    return (window[-1][1] - window[0][1]) / elapsed if elapsed > 0 else 0.0


def failure_summary(trace: str) -> str:
    """The first line of a Java stack trace and each of its causes: what a trace says, without the
    frames."""
    lines = [line.strip() for line in trace.splitlines()]
    causes = [line for line in lines[1:] if line.startswith("Caused by:")]
    return " / ".join([lines[0] if lines else trace, *causes])


def _tables(settings: Settings, topics: list[str]) -> list[PeerTable]:
    tables = []
    with RegistryClient(settings.registry.url) as registry:
        for topic in topics:
            key, value = registry.latest_schema(f"{topic}-key"), registry.latest_schema(f"{topic}-value")
            if key is None or value is None:
                raise PeerSchemaError(
                    f"{topic}: no `{topic}-key`/`{topic}-value` schema in the registry; the backlog's "
                    "topics must have been written by the stack's Debezium connectors"
                )
            tables.append(peer_table(topic, key, value))
    return tables


def _create_keyspace(settings: Settings, keyspace: str, tables: list[PeerTable]) -> None:
    store = settings.store
    cluster, session = connect(store)
    try:
        session.execute(
            f'CREATE KEYSPACE IF NOT EXISTS "{keyspace}" WITH replication = '
            f"{{'class': 'NetworkTopologyStrategy', '{store.local_dc}': {store.replication_factor}}}",
            timeout=60,
        )
        for table in tables:
            session.execute(table.create_cql(keyspace), timeout=60)
    finally:
        cluster.shutdown()


def _drop_keyspace(settings: Settings, keyspace: str) -> None:
    cluster, session = connect(settings.store)
    try:
        session.execute(f'DROP KEYSPACE IF EXISTS "{keyspace}"', timeout=120)
    finally:
        cluster.shutdown()


def _check_sink(worker: PeerWorker, names: PeerNames) -> None:
    """Raise PeerSinkFailed when the connector or a task has failed (a connector not listed yet is
    still starting)."""
    with worker.connect as client:
        status = client.status(names.connector)
    if status is None:
        return
    trace = status.failed_trace or (
        f"connector FAILED on {status.worker_id}" if status.state == "FAILED" else None
    )
    if trace:
        raise PeerSinkFailed(f"the peer sink failed: {failure_summary(trace)} (worker log: {worker.log})")


def _drain(
    settings: Settings,
    worker: PeerWorker,
    names: PeerNames,
    backlog: Backlog,
    options: PeerOptions,
    console: Console,
) -> PeerDrain:
    total = sum(high - low for low, high in backlog.values())
    if total <= 0:
        raise PeerSinkFailed("the backlog is empty: nothing for the peer to drain")
    topics = sorted({topic for topic, _ in backlog})
    started = time.perf_counter()
    before = tree_usage(worker.process.pid)
    samples: list[tuple[float, int]] = []
    with KafkaAdmin(settings.kafka.bootstrap_servers) as kafka:
        while True:
            time.sleep(1.0)
            done = backlog_committed(backlog, kafka.committed(names.consumer_group, topics))
            samples.append((time.perf_counter(), done))
            console.print(f"  peer sink x{options.tasks}: {done:,}/{total:,}", end="\r", highlight=False)
            if done >= total:
                break
            if len(samples) % 5 == 0:
                _check_sink(worker, names)
            if time.perf_counter() - started > options.drain_timeout_s:
                raise PeerSinkFailed(
                    f"the peer sink committed {done:,} of {total:,} records in "
                    f"{options.drain_timeout_s:.0f} s; see its worker log {worker.log}"
                )
    console.print()
    after = tree_usage(worker.process.pid)
    first = next(i for i, (_, done) in enumerate(samples) if done > 0)
    window = samples[max(0, first - 1) :]
    return PeerDrain(
        events=window[-1][1] - window[0][1],
        seconds=window[-1][0] - window[0][0],
        median_rate=median_window_rate(samples),
        drained_after_s=samples[-1][0] - started,
        cpu_seconds=after.cpu_seconds - before.cpu_seconds,
        peak_rss_bytes=after.peak_rss_bytes,
    )


def _catch_up(
    settings: Settings,
    worker: PeerWorker,
    names: PeerNames,
    topics: list[str],
    options: PeerOptions,
    console: Console,
) -> None:
    """Wait until the sink has committed nearly everything in the topics (the replicator's own
    freshness runs wrote more after the backlog): freshness is measured caught up, as the replicator's."""
    deadline = time.monotonic() + options.catch_up_timeout_s
    with KafkaAdmin(settings.kafka.bootstrap_servers) as kafka:
        while (lag := kafka.group_lag(names.consumer_group, topics)) > 100:
            if time.monotonic() > deadline:
                raise PeerSinkFailed(
                    f"the peer sink is still {lag:,} records behind after {options.catch_up_timeout_s:.0f} s"
                )
            _check_sink(worker, names)
            console.print(f"  peer sink catching up: lag {lag:,}", end="\r", highlight=False)
            time.sleep(2.0)
    console.print()


def _drive(settings: Settings, options: PeerOptions, seconds: float, seed: int) -> float:
    if options.driver == "pgbench":
        return run_pgbench_workload(settings, rate=options.freshness_rate, duration_s=seconds).achieved_rate
    return run_workload(settings, rate=options.freshness_rate, duration_s=seconds, seed=seed).achieved_rate


def _freshness(
    settings: Settings,
    worker: PeerWorker,
    names: PeerNames,
    topics: list[str],
    options: PeerOptions,
    console: Console,
) -> PeerFreshness:
    _catch_up(settings, worker, names, topics, options, console)
    console.print(
        f"  peer freshness: {options.warmup_s:.0f} s warm-up, then {options.freshness_seconds:.0f} s at "
        f"{options.freshness_rate:,.0f} changes/s ({options.driver}), probe rows every 200 ms",
        highlight=False,
    )
    if options.warmup_s >= 1:
        _drive(settings, options, options.warmup_s, seed=22)
    probe = FreshnessProbe(
        settings, keyspace=names.keyspace, table=table_name(PROBE_TOPIC), run_id=names.run_id
    )
    try:
        with probe:
            achieved = _drive(settings, options, options.freshness_seconds, seed=23)
        _check_sink(worker, names)
        result = probe.result()
    finally:
        probe.delete_probe_rows()
    console.print(
        f"  peer: {achieved:,.0f} changes/s: p50/p90/p99 freshness {result.p50 * 1000:,.0f}/"
        f"{result.p90 * 1000:,.0f}/{result.p99 * 1000:,.0f} ms ({result.seen}/{result.sent} probes seen)",
        highlight=False,
    )
    return PeerFreshness(options.freshness_rate, achieved, options.freshness_seconds, result)


def run_peer(
    settings: Settings, plugin_dir: Path, backlog: Backlog, options: PeerOptions, console: Console
) -> PeerResult:
    """Measure the peer on ``backlog`` (the partitions and offsets the replicator drained)."""
    names = PeerNames(uuid.uuid4().hex[:6])
    topics = sorted({topic for topic, _ in backlog})
    tables = _tables(settings, topics)
    collections = collection_fields(tables)
    tables = [t.without(set(collections)) for t in tables]
    dropped = tuple(sorted(f"{table}.{field}" for field, names_ in collections.items() for table in names_))
    if dropped:
        console.print(f"  [yellow]the peer cannot write collections: leaving out {', '.join(dropped)}[/]")
    if options.freshness_seconds > 0 and PROBE_TOPIC not in topics:
        raise PeerSchemaError(
            f"the freshness probe writes {PROBE_TOPIC}, which is not among the backlog's topics"
        )
    console.print(f"  peer keyspace {names.keyspace}: {len(tables)} tables", highlight=False)
    _create_keyspace(settings, names.keyspace, tables)
    try:
        with peer_worker(
            settings, names, plugin_dir, rest_port=options.rest_port, log_copy=options.log_copy
        ) as worker:
            config = sink_config(
                topics,
                keyspace=names.keyspace,
                store=settings.store,
                registry_url=settings.connect.worker_registry_url,
                tasks=options.tasks,
                exclude_fields=sorted(collections),
            )
            try:
                with worker.connect as client:
                    client.put_config(names.connector, config)
                drain = _drain(settings, worker, names, backlog, options, console)
                console.print(
                    f"  peer drained {drain.events:,} records: {drain.median_rate:,.0f} events/s "
                    f"(median of 10 s windows), {drain.drained_after_s:,.0f} s after registration",
                    highlight=False,
                )
                freshness = (
                    _freshness(settings, worker, names, topics, options, console)
                    if options.freshness_seconds > 0
                    else None
                )
            finally:
                # A dead worker cannot be asked: stopping it (below) ends the connector anyway.
                with contextlib.suppress(ConnectError), worker.connect as client:
                    client.delete(names.connector)
    finally:
        delete_groups(settings, [names.consumer_group, names.worker_group], console)
        _drop_keyspace(settings, names.keyspace)
    return PeerResult(options.tasks, tuple(t.name for t in tables), drain, freshness, dropped)

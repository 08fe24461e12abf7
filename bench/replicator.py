"""Replicator benchmark report: throughput against three ceilings, cost, freshness, backfill, reads.

    python -m bench.replicator [--backfill-rows 1000000] [--skip-prepare] [--keep-backlog] ...
    python -m bench.replicator --freshness-only      # repeat the freshness runs on a kept backlog

In one run on this machine (the report is printed and written as markdown under bench/results/):
(1) the backlog is the initial snapshot of the demo sources, seeded with ``--backfill-rows`` rows:
    Debezium's capture is timed (the backfill's first half);
(2) the ceilings over the same records: bare consume+decode, bare CQL writes with one process, and
    with one process per core (what the store takes on this host);
(3) `scv consume` with one process drains the whole backlog into a fresh keyspace (the backfill's
    apply, and its throughput, CPU seconds and peak RSS per 1,000 events);
(4) freshness p50/p90/p99 under 1,000 changes/s on that replicator, then on one process per core in
    the same group, each only once its group is settled (partitions assigned, index cache warmed,
    caught up: bench/replicator.py, ``wait_settled``, says why); then the highest rate sustained for
    a minute with p99 under 1 s (rate stepped up until the first step that misses);
(5) one process per core drains the backlog into another keyspace (throughput, cost);
(6) with ``--peer-plugin-dir``, the peer (scylladb/kafka-connect-scylladb, bench/peer/run.py) drains
    the same backlog in its own Connect worker, then its freshness at the same change rate;
(7) the read benchmark (bench/reads.py).
The machine is shared and noisy: the report quotes medians, and ratios against ceilings measured in
the same run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console

from bench.backlog import (
    DEMO_SOURCES,
    ROWS_PER_CUSTOMER,
    BackfillCapture,
    backlog_topics,
    discard_backlog,
    end_offsets,
    prepare_backlog,
)
from bench.ceilings import CeilingResult, bare_consume_decode, bare_cql_writes, bare_cql_writes_per_core
from bench.cpu import TreeUsage, tree_usage
from bench.freshness import (
    MIN_ACHIEVED,
    RESOLUTION,
    FreshnessResult,
    RateStep,
    measure_freshness,
    next_rate,
    wait_for_compactions,
)
from bench.groups import delete_groups
from bench.peer import BUILD_HINT, missing_artifacts
from bench.peer.exceptions import PeerError
from bench.peer.run import PeerOptions, run_peer
from bench.peer.section import ScvFigures, not_run, peer_section
from bench.report import render_freshness_runs, render_report
from bench.timeline import Event, replicator_events, store_flushes
from compose.native.exceptions import StackBusy
from compose.native.exclusive import exclusive_use
from compose.native.paths import StackPaths
from connectors.exceptions import SourceError
from demo.exceptions import DemoError
from scv.config.settings import Settings, get_settings
from scv.kafka.admin import KafkaAdmin, KafkaUnavailable
from store.migrate import migrate
from store.registrations import RegistrationStore
from store.session import connect

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
STATE = RESULTS / "state.json"  # the kept group and keyspace, for --freshness-only
BASE_PORT = 9450


@dataclass
class ReplicatorRun:
    processes: int
    events: int
    seconds: float
    median_rate: float
    usage: dict[str, Any] = field(default_factory=dict)  # cpu_seconds, peak_rss_bytes, events
    drained_after_s: float | None = None  # start -> every backlog record committed (full drains)

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


def _start(processes: int, group: str, keyspace: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "SCV_CONSUMER__GROUP_ID": group,
        "SCV_STORE__KEYSPACE": keyspace,
        "SCV_CONSUMER__METRICS_PORT": str(BASE_PORT),
        "SCV_LOG_FORMAT": "json",
        # INFO: the group and cache events (a handful per start) that explain a latency spike.
        "SCV_LOG_LEVEL": "INFO",
    }
    with log.open("ab") as out:
        # A session of its own, as the replicator's container has its own cgroup in compose: Linux
        # schedules each session as one group (autogroup, as every service of the native stack), so
        # the replicator gets a group's share of the cores instead of sharing the benchmark's.
        return subprocess.Popen(
            [sys.executable, "-m", "scv", "consume", "--processes", str(processes)],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _usage(process: subprocess.Popen[bytes], events: int) -> dict[str, Any]:
    usage: TreeUsage = tree_usage(process.pid)
    return asdict(usage) | {"events": events}


def run_replicator(
    settings: Settings,
    processes: int,
    total: int,
    console: Console,
    keep_running: bool = False,
    max_seconds: float | None = None,
) -> tuple[ReplicatorRun, subprocess.Popen[bytes], str, str]:
    """Drain the backlog with `scv consume` into a fresh keyspace; with ``max_seconds``, measure the
    sustained rate over that window of the drain instead of waiting for all of it."""
    offsets = end_offsets(settings, backlog_topics(settings))
    group, keyspace = f"bench-{uuid.uuid4().hex[:6]}", _fresh_keyspace(settings)
    started_at = time.perf_counter()
    process = _start(processes, group, keyspace, RESULTS / f"replicator-{processes}p.log")
    samples: list[tuple[float, int]] = []
    usage: dict[str, Any] = {}
    drained_after: float | None = None
    try:
        while True:
            time.sleep(1.0)
            if process.poll() is not None:
                raise RuntimeError(f"replicator exited with {process.returncode}; see its log in {RESULTS}")
            done = _committed(settings, group, offsets)
            samples.append((time.perf_counter(), done))
            console.print(f"  scv consume x{processes}: {done:,}/{total:,}", end="\r", highlight=False)
            if done >= total:
                drained_after = samples[-1][0] - started_at
                usage = _usage(process, done)
                break
            if (
                max_seconds is not None
                and samples[0][1] < done
                and (samples[-1][0] - next(t for t, d in samples if d > 0) >= max_seconds)
            ):
                usage = _usage(process, done)
                break
    finally:
        if not keep_running:
            _stop(process)
    console.print()
    started = next(i for i, (_, done) in enumerate(samples) if done > 0)
    window = samples[max(0, started - 1) :]
    # Offsets are committed once per batch (2,000 events), so 1 s samples are lumpy: rates are taken
    # over sliding 10 s windows and the median of those is quoted.
    span = 10
    rates = [(b[1] - a[1]) / (b[0] - a[0]) for a, b in zip(window, window[span:], strict=False)]
    steady = rates or [(window[-1][1] - window[0][1]) / max(1e-9, window[-1][0] - window[0][0])]
    run = ReplicatorRun(
        processes,
        window[-1][1] - window[0][1],
        window[-1][0] - window[0][0],
        statistics.median(steady),
        usage,
        drained_after,
    )
    return run, process, group, keyspace


def _drain(
    settings: Settings, group: str, total: int, process: subprocess.Popen[bytes], console: Console
) -> None:
    offsets = end_offsets(settings, backlog_topics(settings))
    while (done := _committed(settings, group, offsets)) < total:
        if process.poll() is not None:
            raise RuntimeError(f"replicator exited with {process.returncode}; see its log in {RESULTS}")
        console.print(f"  applying the rest of the backlog: {done:,}/{total:,}", end="\r", highlight=False)
        time.sleep(1.0)
    console.print()


def _settle_store(settings: Settings, console: Console, timeout_s: float) -> float:
    """A long-running replicator's store is not compacting a freshly written million rows: wait
    until it has caught up with that (bounded), so freshness is measured in the steady state."""
    console.print("  waiting for the store to finish compacting the drained backlog")
    cluster, session = connect(settings.store)
    try:
        waited = wait_for_compactions(session, timeout_s=timeout_s)
    finally:
        cluster.shutdown()
    console.print(f"  store settled after {waited:.0f} s")
    return waited


def _metric(port: int, name: str) -> float | None:
    """Sum of the samples of ``name`` on a replicator's /metrics (None: not answering yet)."""
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except httpx.HTTPError:
        return None
    values = [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and line[len(name)] in " {"
    ]
    return sum(values) if values else 0.0


def wait_settled(
    settings: Settings,
    ports: list[int],
    group: str,
    log: Path,
    since: float,
    console: Console,
    quiet_s: float = 10.0,
    timeout_s: float = 300.0,
) -> float:
    """Wait until the replicators on ``ports`` are a settled group: each ready (partitions assigned,
    caught up) with its index cache warmed, no rebalance or warm-up logged for ``quiet_s``, and the
    group's lag on the backlog topics gone. Returns the seconds waited.

    Why: a process that has just joined spends its first tens of seconds joining the group (one
    cooperative rebalance per member that joins), then loading its index cache from the store (the
    direct-key entries, ~300k here) while the records of its partitions wait, then catching up.
    Measured inside the minute, that start-up was the one-process-per-core tail (p99 8.4 s against
    0.8 s for the one process that had been running since its drain)."""
    started = time.monotonic()
    topics = backlog_topics(settings)
    while True:
        waited = time.monotonic() - started
        events = replicator_events(log, since)
        last = events[-1].at if events else since
        ready = [_metric(port, "scv_replicator_ready") for port in ports]
        cached = [_metric(port, "scv_index_cache_entries") for port in ports]
        with KafkaAdmin(settings.kafka.bootstrap_servers) as kafka:
            lag = kafka.group_lag(group, topics)
        quiet = time.time() - last
        settled = (
            all(r == 1.0 for r in ready)
            and all(c is not None and c > 0 for c in cached)
            and quiet >= quiet_s
            and lag <= 100
        )
        console.print(
            f"  settling: ready {sum(r == 1.0 for r in ready)}/{len(ports)}, cache entries "
            f"{[int(c or 0) for c in cached]}, lag {lag:,}, quiet {quiet:.0f} s",
            end="\r",
            highlight=False,
        )
        if settled or waited >= timeout_s:
            console.print()
            if settled:
                console.print(f"  group settled after {waited:.0f} s")
            else:
                console.print(f"  [yellow]group not settled after {waited:.0f} s: measuring anyway[/]")
            return waited
        time.sleep(2.0)


def _freshness(
    settings: Settings,
    args: argparse.Namespace,
    ports: list[int],
    log: Path,
    started_at: float,
    console: Console,
    keyspace: str,
    rate: float | None = None,
    warmup_s: float | None = None,
) -> tuple[FreshnessResult, dict[str, Any]]:
    rate = args.freshness_rate if rate is None else rate
    warmup_s = args.freshness_warmup if warmup_s is None else warmup_s
    console.print(
        f"  freshness with {len(ports)} process(es): {warmup_s:.0f} s warm-up, then "
        f"{args.freshness_seconds:.0f} s at {rate:,.0f} changes/s ({args.freshness_driver})",
        highlight=False,
    )
    cluster, session = connect(settings.store)
    try:
        result = measure_freshness(
            settings,
            ports=ports,
            rate=rate,
            seconds=args.freshness_seconds,
            warmup_s=warmup_s,
            driver=args.freshness_driver,
            store=(session, keyspace),
        )
    finally:
        cluster.shutdown()
    f, c, d = result.freshness, result.capture, result.delivery
    console.print(
        f"  {result.achieved_rate:,.0f} changes/s: p50/p90/p99 freshness {f.p50 * 1000:,.0f}/"
        f"{f.p90 * 1000:,.0f}/{f.p99 * 1000:,.0f} ms (capture {c.p99 * 1000:,.0f}, delivery "
        f"{d.p99 * 1000:,.0f} ms at p99), {result.slow_seconds} s with p99 >= 1 s",
        highlight=False,
    )
    record = asdict(result) | {
        "slow_seconds": result.slow_seconds,
        "events": [asdict(e) for e in _events_since(settings, log, started_at)],
        "start": args.fresh_start,
    }
    return result, record


def _events_since(settings: Settings, log: Path, since: float) -> list[Event]:
    """The replicators' group and cache events and the local store's memtable flushes, by time."""
    flushes = store_flushes(StackPaths.of(settings.stack).log("cassandra"), since)
    return sorted([*replicator_events(log, since), *flushes], key=lambda e: e.at)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(120)


def _start_settled(
    settings: Settings,
    args: argparse.Namespace,
    processes: int,
    group: str,
    keyspace: str,
    log: Path,
    console: Console,
) -> tuple[subprocess.Popen[bytes], float]:
    """Start ``processes`` replicators in ``group``; unless ``--fresh-start cold``, wait until
    the group is settled."""
    since = time.time()
    process = _start(processes, group, keyspace, log)
    if args.fresh_start == "settled":
        ports = [BASE_PORT + i for i in range(processes)] if processes > 1 else [BASE_PORT]
        wait_settled(settings, ports, group, log, since, console, timeout_s=args.settle_timeout)
    return process, since


def _ports(processes: int) -> list[int]:
    return [BASE_PORT + i for i in range(processes)] if processes > 1 else [BASE_PORT]


def _rate_search(
    settings: Settings,
    args: argparse.Namespace,
    processes: int,
    log: Path,
    since: float,
    first: FreshnessResult,
    console: Console,
    group: str,
    keyspace: str,
) -> tuple[list[RateStep], str]:
    steps = [
        RateStep(
            first.requested_rate,
            first.achieved_rate,
            first.freshness.p50,
            first.freshness.p99,
            first.freshness.p99 < 1.0,
        )
    ]
    deadline = time.monotonic() + args.search_budget
    step_s = args.freshness_seconds + args.search_warmup + 10
    while (rate := next_rate(steps, args.search_step)) is not None:
        # A step that missed leaves a lag behind: the next step starts once it is applied, or it
        # would measure the previous step's backlog (and the search would only ever go down).
        wait_settled(settings, _ports(processes), group, log, since, console, timeout_s=args.settle_timeout)
        if time.monotonic() + step_s > deadline:
            return (
                steps,
                f"Search stopped by its time budget ({args.search_budget:.0f} s, `--search-budget`).",
            )
        result, _ = _freshness(
            settings, args, _ports(processes), log, since, console, keyspace, rate, args.search_warmup
        )
        steps.append(
            RateStep(
                rate,
                result.achieved_rate,
                result.freshness.p50,
                result.freshness.p99,
                result.freshness.p99 < 1.0,
            )
        )
    last = steps[-1]
    passed = [s.requested for s in steps if s.passed]
    missed = [s.requested for s in steps if not s.passed]
    if last.achieved < MIN_ACHIEVED * last.requested:
        return steps, (
            f"Stopped: the load generator reached {last.achieved:,.0f} of {last.requested:,.0f} changes/s "
            "asked (the machine's limit for producing the load, not a replicator figure)."
        )
    if not passed:
        return steps, "Every step missed, down to the search's floor (250 changes/s)."
    best = max(passed)
    above = [rate for rate in missed if rate > best]
    return steps, (
        f"Sustained: {best:,.0f} changes/s; {min(above):,.0f} missed "
        f"(bisected to within {RESOLUTION:,.0f} changes/s)."
        if above
        else f"Sustained: {best:,.0f} changes/s; no step above it missed."
    )


def _host() -> dict[str, Any]:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False
    ).stdout.strip()
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"cores": os.cpu_count() or 1, "memory_gib": memory, "commit": commit or "unknown"}


def _reads(args: argparse.Namespace, console: Console) -> dict[str, Any] | None:
    """The read benchmark's figures: run now (`bench.reads`), or its latest saved run with its date."""
    path = RESULTS / "reads-latest.json"
    if args.reads:
        console.rule("read benchmark (bench/reads.py)")
        code = subprocess.run(
            [sys.executable, "-m", "bench.reads", "--seconds", str(args.reads_seconds)], cwd=REPO, check=False
        ).returncode
        if code != 0:
            console.print(f"[red]read benchmark failed (exit {code}); its last saved figures are quoted[/]")
    if not path.exists():
        return None
    reads: dict[str, Any] = json.loads(path.read_text())
    reads["source"] = "(this run)" if args.reads else "(latest saved run of `make bench-reads`, not this run)"
    return reads


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--backfill-rows",
        type=int,
        default=1_000_000,
        help="rows of the demo sources' initial snapshot (the backlog and the backfill measured)",
    )
    parser.add_argument("--min-events", type=int, default=0, help="top the backlog up with the workload")
    parser.add_argument("--freshness-rate", type=float, default=1000.0)
    parser.add_argument("--freshness-seconds", type=float, default=60.0)
    parser.add_argument("--freshness-warmup", type=float, default=30.0)
    parser.add_argument("--freshness-driver", choices=("pgbench", "python"), default="pgbench")
    parser.add_argument(
        "--fresh-start",
        choices=("settled", "cold"),
        default="settled",
        help="settled: measure once the group is settled; cold: right after starting (the old tail)",
    )
    parser.add_argument("--settle-timeout", type=float, default=300.0)
    parser.add_argument("--compaction-timeout", type=float, default=300.0)
    parser.add_argument("--skip-prepare", action="store_true", help="reuse the backlog already in Kafka")
    parser.add_argument(
        "--keep-backlog",
        action="store_true",
        help="leave the sources, topics and the 1-process keyspace (for --skip-prepare, --freshness-only)",
    )
    parser.add_argument(
        "--freshness-only",
        action="store_true",
        help="only the freshness runs, on the backlog and keyspace a --keep-backlog run left",
    )
    parser.add_argument(
        "--max-seconds", type=float, default=None, help="1-process drain: measure a window only"
    )
    parser.add_argument(
        "--many-max-seconds",
        type=float,
        default=120.0,
        help="one-process-per-core drain: the measured window (0: the whole backlog)",
    )
    parser.add_argument("--cql-sample", type=int, default=200_000, help="rows written by the CQL ceilings")
    parser.add_argument("--no-rate-search", dest="rate_search", action="store_false")
    parser.add_argument("--search-step", type=float, default=500.0)
    parser.add_argument("--search-warmup", type=float, default=15.0)
    parser.add_argument("--search-budget", type=float, default=420.0, help="seconds the rate search may take")
    parser.add_argument("--no-reads", dest="reads", action="store_false", help="skip bench/reads.py")
    parser.add_argument("--reads-seconds", type=float, default=4.0)
    parser.add_argument(
        "--peer-plugin-dir",
        type=Path,
        default=None,
        help="scylladb/kafka-connect-scylladb's plugin folder: run the peer sink too (bench/peer/README.md)",
    )
    parser.add_argument("--peer-tasks", type=int, default=1, help="the peer sink's tasks.max")
    parser.add_argument("--peer-rest-port", type=int, default=8093, help="the peer worker's REST port")
    parser.add_argument(
        "--no-peer-freshness",
        dest="peer_freshness",
        action="store_false",
        help="the peer's events/s only (no freshness run for it)",
    )
    return parser


def _migrate_default(settings: Settings) -> None:
    # A freshly started stack has no keyspace yet: onboarding registers the sources there.
    cluster, session = connect(settings.store)
    try:
        store = settings.store
        migrate(session, store.keyspace, store.replication_factor, store.local_dc)
    finally:
        cluster.shutdown()


def _write(report: dict[str, Any], console: Console) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(report, indent=2, default=_json_default))
    markdown = render_report(json.loads(json.dumps(report, default=_json_default)))
    path: Path = RESULTS / str(report["markdown"])
    path.write_text(markdown)
    console.print(markdown, markup=False, highlight=False)
    console.print(f"report written to {path.relative_to(REPO)}")
    return path


def _json_default(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    raise TypeError(f"not JSON serialisable: {value!r}")


def freshness_only(settings: Settings, args: argparse.Namespace, console: Console) -> None:
    """Repeat the freshness runs on the kept backlog and keyspace; appended to the latest report."""
    if not STATE.exists():
        raise SystemExit(
            f"no kept benchmark state ({STATE}): run `python -m bench.replicator --keep-backlog` first"
        )
    state = json.loads(STATE.read_text())
    cores = os.cpu_count() or 1
    records = []
    steps: list[RateStep] = []
    stop_reason = ""
    for processes in sorted({1, cores}):
        console.rule(f"freshness, {processes} process(es)")
        log = RESULTS / f"replicator-{processes}p-fresh.log"
        process, since = _start_settled(
            settings, args, processes, state["group"], state["keyspace"], log, console
        )
        try:
            # Settling may have drained a lag (changes made since the kept run, the peer's load among
            # them): measure once the store has compacted it, as the full run does after its drain.
            _settle_store(settings, console, args.compaction_timeout)
            result, record = _freshness(
                settings, args, _ports(processes), log, since, console, state["keyspace"]
            )
            records.append(record)
            # A miss at the asked rate: search down for the rate this machine sustains today.
            if processes == cores and args.rate_search and result.freshness.p99 >= 1.0:
                console.rule("highest rate with freshness p99 under 1 s (down from the asked rate)")
                steps, stop_reason = _rate_search(
                    settings, args, cores, log, since, result, console, state["group"], state["keyspace"]
                )
        finally:
            _stop(process)
    run = {"at": datetime.now(UTC).isoformat(), "freshness": records, "start": args.fresh_start}
    runs_path = RESULTS / "freshness-runs.json"
    runs = json.loads(runs_path.read_text()) if runs_path.exists() else []
    runs.append(json.loads(json.dumps(run, default=_json_default)))
    runs_path.write_text(json.dumps(runs, indent=2))
    latest = json.loads((RESULTS / "latest.json").read_text()) if (RESULTS / "latest.json").exists() else None
    if latest is not None:
        latest["freshness_runs"] = [r for r in runs if r["at"] > latest["at"]]
        if steps:
            latest["rate_search"] = [asdict(s) for s in steps]
            latest["rate_search_stop"] = (
                f"{stop_reason} (Searched in the repeat run of {run['at'][:16]} UTC.)"
            )
        _write(latest, console)
    else:
        console.print(render_freshness_runs(runs[-3:]), markup=False)


def main() -> None:
    args = _parser().parse_args()
    console = Console()
    settings = get_settings()
    # A test session on the same stack restarts services and loads the host: the run waits for it.
    try:
        with exclusive_use(StackPaths.of(settings.stack), "a benchmark", on_wait=console.print):
            _run(args, settings, console)
    except StackBusy as exc:
        raise SystemExit(str(exc)) from None


def _run(args: argparse.Namespace, settings: Settings, console: Console) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    _migrate_default(settings)
    if args.freshness_only:
        freshness_only(settings, args, console)
        return
    peer = _peer_status(args.peer_plugin_dir)
    began, at = time.monotonic(), datetime.now(UTC)
    cores = os.cpu_count() or 1

    # (1) the backlog: the demo sources' initial snapshot, Debezium's capture timed.
    capture: BackfillCapture | None = None
    capture_note = ""
    if args.skip_prepare:
        topics = backlog_topics(settings)
        total = sum(h - lo for lo, h in end_offsets(settings, topics).values())
        saved = RESULTS / "backfill-capture.json"
        if saved.exists():
            data = json.loads(saved.read_text())
            capture = BackfillCapture(data["rows"], data["seconds"], data["customers"])
            capture_note = (
                f"Capture measured when this backlog was built ({data['at'][:16]} UTC, `--skip-prepare`)."
            )
    else:
        customers = math.ceil(args.backfill_rows / ROWS_PER_CUSTOMER)
        topics, total, capture = prepare_backlog(settings, customers, args.min_events, console)
        (RESULTS / "backfill-capture.json").write_text(
            json.dumps(asdict(capture) | {"at": datetime.now(UTC).isoformat()}, indent=2)
        )
    console.rule(f"backlog: {total:,} Debezium Avro records in {len(topics)} topics")
    backlog = end_offsets(settings, topics)  # what the peer drains too: later records are not counted

    # (2) the ceilings. Rows for the CQL ones are kept from the first records only, so the decode
    # loop stays bare.
    console.rule("ceilings")
    ceiling_group = f"bench-ceiling-{uuid.uuid4().hex[:8]}"
    decode, rows = bare_consume_decode(
        settings, topics, total, keep_rows=args.cql_sample, group=ceiling_group
    )
    console.print(f"ceiling consume+decode: {decode.rate:,.0f} records/s")
    cluster, session = connect(settings.store)
    try:
        concurrency = settings.consumer.write_concurrency
        cql = bare_cql_writes(session, settings.store.keyspace, rows, concurrency)
        console.print(f"ceiling CQL writes, 1 process: {cql.rate:,.0f} rows/s")
        cql_many = bare_cql_writes_per_core(session, settings.store, rows, cores, concurrency)
        console.print(f"ceiling CQL writes, {cores} processes: {cql_many.rate:,.0f} rows/s")
    finally:
        cluster.shutdown()
    del rows

    # (3) one process drains the backlog (the backfill's apply) and (4) stays up, caught up, for
    # freshness; then one process per core in the same group, measured once settled.
    console.rule("scv consume, 1 process: the whole backlog")
    for old_log in RESULTS.glob("replicator-*.log"):
        old_log.unlink()
    apply_started = time.perf_counter()
    one, process, group, first_keyspace = run_replicator(
        settings, 1, total, console, keep_running=True, max_seconds=args.max_seconds
    )
    fresh: list[dict[str, Any]] = []
    steps: list[RateStep] = []
    stop_reason = ""
    try:
        _drain(settings, group, total, process, console)
        one.drained_after_s = time.perf_counter() - apply_started
        _settle_store(settings, console, args.compaction_timeout)
        log = RESULTS / "replicator-1p.log"
        if args.fresh_start == "settled":
            wait_settled(
                settings, [BASE_PORT], group, log, time.time() - 3600, console, timeout_s=args.settle_timeout
            )
        _, record = _freshness(settings, args, [BASE_PORT], log, time.time(), console, first_keyspace)
        fresh.append(record)
    finally:
        _stop(process)
    if cores > 1:
        console.rule(f"freshness, {cores} processes")
        log = RESULTS / f"replicator-{cores}p-fresh.log"
        process, since = _start_settled(settings, args, cores, group, first_keyspace, log, console)
        try:
            result, record = _freshness(settings, args, _ports(cores), log, since, console, first_keyspace)
            fresh.append(record)
            if args.rate_search:
                console.rule("highest rate with freshness p99 under 1 s")
                steps, stop_reason = _rate_search(
                    settings, args, cores, log, since, result, console, group, first_keyspace
                )
        finally:
            _stop(process)
        console.rule(f"scv consume, {cores} processes: the backlog again, into another keyspace")
        many, _, many_group, second_keyspace = run_replicator(
            settings, cores, total, console, max_seconds=args.many_max_seconds or None
        )
    else:
        many, many_group, second_keyspace = None, "", ""
    if args.keep_backlog:
        STATE.write_text(json.dumps({"group": group, "keyspace": first_keyspace, "events": total}))
    _drop_bench_data(settings, [second_keyspace] + ([] if args.keep_backlog else [first_keyspace]))
    delete_groups(settings, [ceiling_group, many_group] + ([] if args.keep_backlog else [group]))
    if peer is None:
        peer = _run_peer(settings, args, backlog, _scv_figures([one, many], fresh), console)

    reads = _reads(args, console)
    apply_s = one.drained_after_s or 0.0
    report: dict[str, Any] = {
        "at": at.isoformat(),
        "markdown": f"report-{at:%Y%m%d-%H%M}.md",
        "command": "python -m bench.replicator " + " ".join(sys.argv[1:]),
        "host": _host(),
        "events": total,
        "ceilings": [asdict(c) | {"rate": c.rate} for c in (decode, cql, cql_many)],
        "replicator": [asdict(r) | {"rate": r.rate} for r in (one, many) if r is not None],
        "freshness": fresh,
        "rate_search": [asdict(s) for s in steps],
        "rate_search_seconds": args.freshness_seconds,
        "rate_search_processes": cores,
        "rate_search_stop": stop_reason,
        "backfill": {
            "capture": asdict(capture) if capture else None,
            "apply": {"seconds": apply_s, "events": total},
            "note": " ".join(
                n
                for n in (
                    f"The backlog is the initial snapshot of the three demo sources (crm, core, care: "
                    f"{capture.customers:,} customers, {capture.rows:,} rows), captured one source after "
                    "the other; the apply is timed separately on the finished snapshot, so end to end "
                    "is their sum (run together they overlap)."
                    if capture
                    else "",
                    capture_note,
                )
                if n
            ),
        },
        "reads": reads,
        "peer": peer,
        "duration_s": time.monotonic() - began,
    }
    _write(report, console)
    if args.keep_backlog:
        console.print("backlog and keyspace kept for --skip-prepare / --freshness-only")
    else:
        discard_backlog(settings)
        console.print("benchmark sources and topics removed; next: `scv demo seed --reset`, `make demo`")


def _peer_status(plugin_dir: Path | None) -> dict[str, Any] | None:
    """What the report says of a peer that will not run, or None when it will. Checked before the long
    run: a wrong folder fails at once, naming the missing artifact."""
    if plugin_dir is None:
        return not_run(f"no `--peer-plugin-dir`; {BUILD_HINT}")
    missing = missing_artifacts(plugin_dir)
    if missing:
        raise SystemExit(f"--peer-plugin-dir {plugin_dir}: missing {', '.join(missing)}; {BUILD_HINT}")
    return None


def _scv_figures(runs: list[ReplicatorRun | None], fresh: list[dict[str, Any]]) -> list[ScvFigures]:
    """The replicator's rows beside the peer's: each drain's rate with the freshness measured with
    the same number of processes."""
    by_processes = {int(f["processes"]): f["freshness"] for f in fresh}
    figures = []
    for run in runs:
        if run is None:
            continue
        quantiles = by_processes.get(run.processes) or {}
        name = f"scv consume, {run.processes} process" + ("es" if run.processes != 1 else "")
        figures.append(
            ScvFigures(name, run.processes, run.median_rate, quantiles.get("p50"), quantiles.get("p99"))
        )
    return figures


def _run_peer(
    settings: Settings,
    args: argparse.Namespace,
    backlog: dict[tuple[str, int], tuple[int, int]],
    scv: list[ScvFigures],
    console: Console,
) -> dict[str, Any]:
    """(6) the peer on the same backlog; a failure is reported in its section, not lost with the run."""
    console.rule(f"peer: kafka-connect-scylladb, {args.peer_tasks} task(s), on the same backlog")
    options = PeerOptions(
        tasks=args.peer_tasks,
        rest_port=args.peer_rest_port,
        freshness_rate=args.freshness_rate,
        freshness_seconds=args.freshness_seconds if args.peer_freshness else 0.0,
        warmup_s=args.freshness_warmup,
        driver=args.freshness_driver,
        log_copy=RESULTS / "peer-worker.log",
    )
    try:
        result = run_peer(settings, args.peer_plugin_dir, backlog, options, console)
    except (PeerError, SourceError, KafkaUnavailable, DemoError) as exc:
        # The worker, the registry, Kafka or the probe's database: named in the report's peer section.
        console.print(f"[red]peer: {exc}[/]", highlight=False)
        return not_run(f"the peer failed: {exc}")
    return peer_section(result, scv)


def _drop_bench_data(settings: Settings, keyspaces: list[str]) -> None:
    # Millions of benchmark rows would otherwise stay in the local store and slow every later start.
    cluster, session = connect(settings.store)
    try:
        for keyspace in keyspaces:
            if keyspace:
                session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
        session.execute(f"DROP TABLE IF EXISTS {settings.store.keyspace}.bench_rows", timeout=120)
    finally:
        cluster.shutdown()


if __name__ == "__main__":
    main()


__all__ = ["CeilingResult", "ReplicatorRun", "main", "wait_settled"]

"""The benchmark's own arithmetic: quantiles from histogram deltas, and who used the cores."""

from __future__ import annotations

import math
import multiprocessing
import os
import time

import pytest

from bench.cpu import CpuSampler, component_of, merge_reading, pressure_total_us
from bench.freshness import histogram_quantile

# Cumulative bucket counts, as Prometheus exports them: le -> observations <= le.
BEFORE = {0.1: 10.0, 0.5: 10.0, 1.0: 10.0, math.inf: 10.0}
AFTER = {0.1: 60.0, 0.5: 100.0, 1.0: 109.0, math.inf: 110.0}  # window: 50, 40, 9, 1 per bucket


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        (0.25, 0.05),  # rank 25 of 100, inside the first bucket (0, 0.1]: interpolated
        (0.5, 0.1),  # rank 50: exactly the first bucket's bound
        (0.7, 0.3),  # rank 70: 20 of the 40 in (0.1, 0.5], halfway through it
        (0.99, 1.0),  # rank 99: the last of (0.5, 1.0]
        (0.999, 1.0),  # above every finite bucket: its largest bound, as Prometheus answers
    ],
)
def test_quantile_interpolates_within_the_window_buckets(q: float, expected: float) -> None:
    assert histogram_quantile(q, BEFORE, AFTER) == pytest.approx(expected)


def test_quantile_of_an_empty_window_is_nan() -> None:
    assert math.isnan(histogram_quantile(0.5, AFTER, AFTER))


@pytest.mark.parametrize(
    ("cmdline", "component"),
    [
        ("/work/.venv/bin/python -m scv consume --processes 2", "replicator"),
        ("/usr/bin/java -Xmx768m org.apache.kafka.connect.cli.ConnectDistributed c.properties", "connect"),
        ("/usr/bin/java ... org.apache.cassandra.service.CassandraDaemon", "cassandra"),
        ("/usr/bin/java -cp /x/* kafka.Kafka server.properties", "kafka"),
        ("postgres: walsender cdc_core 127.0.0.1(33124) START_REPLICATION", "postgres walsenders"),
        ("postgres: postgres core 127.0.0.1(40000) SELECT", "postgres"),
        ("/usr/lib/postgresql/15/bin/pgbench --no-vacuum", "load generator (pgbench)"),
        ("/usr/sbin/sshd -D", "other"),
    ],
)
def test_processes_are_grouped_by_component(cmdline: str, component: str) -> None:
    assert component_of(cmdline) == component


def test_spawned_worker_processes_belong_to_their_parent_component() -> None:
    worker = "/work/.venv/bin/python -B -c from multiprocessing.spawn import spawn_main; spawn_main()"
    assert component_of(worker, parent="/work/.venv/bin/python -m scv consume -p 2") == "replicator"


def test_a_process_that_exits_keeps_its_component() -> None:
    last = {10: ("postgres: app crm 127.0.0.1(5000) idle", 1, 100), 2: ("", 0, 5)}
    # At the next reading the backend is a zombie (no command line) and a kernel thread stays nameless.
    merge_reading(last, {10: ("", 1, 180), 2: ("", 0, 9), 11: ("postgres: app crm idle", 1, 3)})
    assert last == {
        10: ("postgres: app crm 127.0.0.1(5000) idle", 1, 180),
        2: ("", 0, 9),
        11: ("postgres: app crm idle", 1, 3),
    }
    assert [component_of(cmdline) for cmdline, _, _ in last.values()] == ["postgres", "other", "postgres"]


def test_pressure_total_is_read_from_the_some_line() -> None:
    text = (
        "some avg10=20.89 avg60=12.60 avg300=36.10 total=12801124874\n"
        "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
    )
    assert pressure_total_us(text) == 12_801_124_874
    assert pressure_total_us("full avg10=0.00 total=5\n") is None


def test_sampler_sees_a_busy_thread_wait_for_the_core_it_shares() -> None:
    """Two busy processes pinned to one core: each waits for it about as long as it runs."""

    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    try:
        with CpuSampler(every_s=0.2) as cpu:
            worker = multiprocessing.get_context("fork").Process(target=spin, args=(1.5,))
            worker.start()
            spin(1.5)
            worker.join()
    finally:
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    waits = cpu.waits()
    # The benchmark's own process (and its fork, started inside the window) waited for the shared core.
    assert waits.get("benchmark + workload", 0.0) > 0.3


def spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass

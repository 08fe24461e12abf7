"""Replicator health: /livez, /readyz (consumer/health.py, consumer/endpoints.py) and lag gauges that
keep moving while the loop is stuck (consumer/lag_gauges.py), with fakes of our own parts."""

from __future__ import annotations

import socket
from collections.abc import Iterable, Mapping

import httpx
import pytest
from prometheus_client import REGISTRY

from consumer.checkpoint import Partition
from consumer.endpoints import serve_endpoints
from consumer.health import Health
from consumer.lag_gauges import LagGauges


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_live_while_the_loop_goes_round_not_after_it_stops() -> None:
    clock = Clock()
    health = Health(live_after_s=60, ready_max_lag_s=30, clock=clock)
    health.progressed()
    clock.now += 59
    assert health.live()[0]
    clock.now += 2
    live, reason = health.live()
    assert not live
    assert "61s" in reason
    health.progressed()  # an idle poll or a retried outage attempt counts as going round
    assert health.live()[0]


def test_ready_only_when_assigned_and_caught_up_within_the_bound() -> None:
    health = Health(live_after_s=60, ready_max_lag_s=30, clock=Clock())
    assert health.ready() == (False, "lag not measured yet")
    health.lag_reported(assigned=0, max_lag_s=0.0)
    assert not health.ready()[0]
    health.lag_reported(assigned=6, max_lag_s=45.0)
    assert not health.ready()[0]
    health.lag_reported(assigned=6, max_lag_s=2.0)
    assert health.ready()[0]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_endpoints_answer_probes_with_status_codes_and_serve_metrics() -> None:
    clock = Clock()
    health = Health(live_after_s=60, ready_max_lag_s=30, clock=clock)
    port = _free_port()
    server = serve_endpoints("127.0.0.1", port, health)
    try:
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/livez").status_code == 200
        ready = httpx.get(f"{base}/readyz")
        assert ready.status_code == 503
        assert "lag not measured yet" in ready.text
        clock.now += 120
        assert httpx.get(f"{base}/livez").status_code == 503
        metrics = httpx.get(f"{base}/metrics").text
        assert "scv_replicator_live 0.0" in metrics
        assert "scv_replicator_ready 0.0" in metrics
    finally:
        server.shutdown()
        server.server_close()


class FakeConsumer:
    def __init__(self, assignment: list[Partition]) -> None:
        self.partitions = assignment

    def assignment(self) -> list[object]:
        class TP:
            def __init__(self, topic: str, partition: int) -> None:
                self.topic, self.partition = topic, partition

        return [TP(t, p) for t, p in self.partitions]


class FakeCheckpoint:
    def __init__(self, committed: dict[Partition, int]) -> None:
        self.offsets = committed

    def committed(self, partition: Partition) -> int | None:
        return self.offsets.get(partition)


P = ("crm.public.customers", 0)


def _gauge(name: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"topic": P[0], "partition": str(P[1])})


@pytest.fixture
def stalled() -> tuple[LagGauges, dict[Partition, tuple[int, int]], Clock, Health]:
    """A replicator caught up at offset 100, whose loop then stops while records keep arriving."""
    marks: dict[Partition, tuple[int, int]] = {P: (0, 100)}
    clock = Clock()
    health = Health(60, 30, clock=clock)

    def watermarks(partitions: Iterable[Partition]) -> Mapping[Partition, tuple[int, int]]:
        return {p: marks[p] for p in partitions if p in marks}

    gauges = LagGauges(
        FakeConsumer([P]),  # type: ignore[arg-type]
        FakeCheckpoint({P: 100}),  # type: ignore[arg-type]
        watermarks,
        health,
        clock=clock,
    )
    gauges.report()
    return gauges, marks, clock, health


def test_lag_gauges_keep_moving_while_the_loop_is_stuck(
    stalled: tuple[LagGauges, dict[Partition, tuple[int, int]], Clock, Health],
) -> None:
    gauges, marks, clock, health = stalled
    assert _gauge("scv_consumer_lag_seconds") == 0.0
    # Nothing is applied any more (no call to gauges.applied), but the reports go on.
    marks[P] = (0, 130)
    clock.now += 5
    gauges.report()
    assert _gauge("scv_consumer_lag_offsets") == 30
    assert _gauge("scv_consumer_lag_seconds") == pytest.approx(5.0)
    marks[P] = (0, 180)
    clock.now += 40
    gauges.report()
    assert _gauge("scv_consumer_lag_offsets") == 80
    assert _gauge("scv_consumer_lag_seconds") == pytest.approx(45.0)
    assert not health.ready()[0]


def test_lag_seconds_start_from_the_newest_applied_change(
    stalled: tuple[LagGauges, dict[Partition, tuple[int, int]], Clock, Health],
) -> None:
    gauges, marks, clock, health = stalled
    clock.now += 100
    gauges.applied(P, clock.now - 2.0)  # a change committed at the source 2 s ago was just applied
    marks[P] = (0, 150)
    gauges.report()
    assert _gauge("scv_consumer_lag_seconds") == pytest.approx(2.0)
    assert health.ready()[0]


def test_revoked_partitions_leave_the_gauges(
    stalled: tuple[LagGauges, dict[Partition, tuple[int, int]], Clock, Health],
) -> None:
    gauges, _marks, _clock, health = stalled
    gauges._consumer.partitions = []  # type: ignore[attr-defined]
    gauges.report()
    assert _gauge("scv_consumer_lag_offsets") is None
    assert health.ready() == (False, "no partition assigned")

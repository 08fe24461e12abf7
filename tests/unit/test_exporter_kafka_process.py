"""The exporter's Kafka collector process (scv/exporter/kafka_process.py): a child that aborts, as
librdkafka does during a broker restart, or hangs, is replaced; the exporter lives on. The child runs
a plain fake collector (below): what is under test is the process handling, not Kafka."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterable, Iterator

import pytest
from prometheus_client import REGISTRY

from scv.exporter.exceptions import ExporterError
from scv.exporter.facts import GroupFacts
from scv.exporter.kafka_lag import HeartbeatAges
from scv.exporter.kafka_process import KafkaLagProcess


class FakeLag:
    """Answers with the child's pid as a heartbeat age; fails when asked about topic "boom"."""

    def read(self, heartbeat_topics: Iterable[str], now: float) -> tuple[list[GroupFacts], HeartbeatAges]:
        topics = list(heartbeat_topics)
        if "boom" in topics:
            raise RuntimeError("Kafka at 127.0.0.1:9092 did not list its consumer groups")
        return [], HeartbeatAges({"pid": float(os.getpid()), "now": now})


def _restarts() -> float:
    return REGISTRY.get_sample_value("scv_exporter_kafka_collector_restarts_total") or 0.0


def _pid(lag: KafkaLagProcess) -> int:
    return int(lag.read([], now=1.0)[1].ages["pid"])


@pytest.fixture
def lag() -> Iterator[KafkaLagProcess]:
    process = KafkaLagProcess(FakeLag, round_deadline_s=10)
    yield process
    process.close()


def test_rounds_are_answered_by_one_long_lived_child(lag: KafkaLagProcess) -> None:
    first = _pid(lag)
    assert first != os.getpid()
    assert lag.read([], now=7.0)[1].ages["now"] == 7.0
    assert _pid(lag) == first


def test_a_failed_round_is_an_exporter_error_and_the_child_answers_the_next(lag: KafkaLagProcess) -> None:
    first = _pid(lag)
    with pytest.raises(ExporterError, match="did not list its consumer groups"):
        lag.read(["boom"], now=1.0)
    assert _pid(lag) == first


def test_an_aborted_child_is_replaced_and_the_next_round_answered(lag: KafkaLagProcess) -> None:
    first = _pid(lag)
    before = _restarts()
    os.kill(first, signal.SIGABRT)  # what librdkafka's failed assertion does
    assert lag._child is not None
    lag._child.join(10)  # died between two rounds (one dying mid-round fails that round)
    replaced = _pid(lag)
    assert replaced != first
    assert _restarts() == before + 1


def test_a_child_stuck_in_a_round_is_killed_and_that_round_fails(lag: KafkaLagProcess) -> None:
    first = _pid(lag)
    os.kill(first, signal.SIGSTOP)
    lag._round_deadline_s = 1.0
    with pytest.raises(ExporterError, match="did not answer within 1 s"):
        lag.read([], now=1.0)
    lag._round_deadline_s = 10.0  # a new child's first round includes its start-up
    assert _pid(lag) != first

"""The exporter's Kafka questions, asked from a child process that is replaced when it dies.

    lag = KafkaLagProcess(functools.partial(kafka_lag, bootstrap, 5.0, ".*", 120))
    groups, heartbeats = lag.read(heartbeat_topics, now=time.time())   # as KafkaLag.read
    lag.close()

Why a process: librdkafka aborts the whole process (``rd_kafka_enq_once_del_source_return: Assertion
`eonce->refcnt > 0' failed``) when the broker drops the connection in the middle of a request sent
to a group coordinator (DescribeConsumerGroups, ListConsumerGroupOffsets: librdkafka issue #4605,
fix not released). The exporter asks exactly those every round, and a broker restart is exactly when
SREs need its figures: seen here on every broker restart of the fault suite. An abort cannot be
caught, only contained: it now ends the child, the round fails (counted and logged, like any failed
round) and the next round starts a new child. The lag timelines live in the child, so a new child
seeds them again from record timestamps (scv/exporter/kafka_lag.py), as after an exporter restart.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections.abc import Callable, Iterable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, Protocol

import structlog

from scv.exporter.exceptions import ExporterError
from scv.exporter.facts import GroupFacts
from scv.exporter.kafka_lag import HeartbeatAges, KafkaLag
from scv.exporter.metrics import KAFKA_CLIENT_RESTARTS
from scv.kafka.admin import KafkaAdmin

__all__ = ["KafkaLagProcess", "LagReader", "kafka_lag"]

log = structlog.get_logger(__name__)


class LagReader(Protocol):
    def read(self, heartbeat_topics: Iterable[str], now: float) -> tuple[list[GroupFacts], HeartbeatAges]: ...


def kafka_lag(bootstrap_servers: str, timeout_s: float, groups: str, lookup_table_size: int) -> LagReader:
    """The collector the child runs (module level, so it can be sent to a spawned process)."""
    return KafkaLag(KafkaAdmin(bootstrap_servers, timeout_s=timeout_s), groups, lookup_table_size)


class KafkaLagProcess:
    def __init__(self, make_reader: Callable[[], LagReader], round_deadline_s: float) -> None:
        """``make_reader`` builds the collector in the child (picklable: a module-level callable or
        a partial of one); a round not answered within ``round_deadline_s`` is a stuck child."""
        self._make_reader = make_reader
        self._round_deadline_s = round_deadline_s
        self._context = multiprocessing.get_context("spawn")
        self._child: BaseProcess | None = None
        self._conn: Connection | None = None

    def read(self, heartbeat_topics: Iterable[str], now: float) -> tuple[list[GroupFacts], HeartbeatAges]:
        conn = self._ensure_child()
        try:
            conn.send((list(heartbeat_topics), now))
            if not conn.poll(self._round_deadline_s):
                self._replace(f"no answer within {self._round_deadline_s:g} s")
                raise ExporterError(f"the Kafka collector did not answer within {self._round_deadline_s:g} s")
            kind, payload = conn.recv()
        except (EOFError, OSError) as exc:
            reason = self._replace("died")
            raise ExporterError(
                f"the Kafka collector process {reason}; a new one answers the next round"
            ) from exc
        if kind == "error":
            raise ExporterError(str(payload))
        groups, beats = payload
        return groups, beats

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        if self._child is not None and self._child.is_alive():
            self._child.terminate()
            self._child.join(5)
        self._child = self._conn = None

    def _ensure_child(self) -> Connection:
        if self._child is not None and self._conn is not None and self._child.is_alive():
            return self._conn
        if self._child is not None:
            self._replace("died")
        ours, theirs = self._context.Pipe()
        child = self._context.Process(
            target=_serve, args=(theirs, self._make_reader), name="scv-exporter-kafka", daemon=True
        )
        child.start()
        theirs.close()
        self._child, self._conn = child, ours
        return ours

    def _replace(self, what: str) -> str:
        """Forget the current child (killed if still running); returns how it ended, for the message."""
        child, self._child = self._child, None
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if child is None:
            return what
        if child.is_alive():
            child.kill()
        child.join(5)
        reason = _ending(child.exitcode) if what == "died" else what
        KAFKA_CLIENT_RESTARTS.inc()
        log.error("exporter.kafka_collector_replaced", reason=reason, pid=child.pid)
        return reason


def _ending(code: int | None) -> str:
    if code is not None and code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


def _serve(conn: Connection, make_reader: Callable[[], LagReader]) -> None:
    """The child: answer each round's request until the parent closes the pipe."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when the child stops
    lag = make_reader()
    while True:
        try:
            heartbeat_topics, now = conn.recv()
        except EOFError:
            return
        answer: tuple[str, Any]
        try:
            answer = ("ok", lag.read(heartbeat_topics, now))
        except Exception as exc:  # reported by the parent as a failed round
            answer = ("error", str(exc).splitlines()[0] if str(exc) else repr(exc))
        conn.send(answer)

"""One look at the whole pipeline for `scv status`: every reader asked at once, then judged.

    report = gather(settings, group="scv-replicator")
    report.exit_code      # 1 when any source (or a dependency) is FAIL
    report.as_dict()      # the --json document

The exporter's readers, asked once and concurrently (a hung Connect costs its own timeout, not the
sum): Kafka Connect and each source's slot, the group's lag, each heartbeat topic's newest record,
the registry and the store, and Prometheus for freshness and dead letters. Lag in seconds is exact
here: the timestamp of the oldest record the group waits for is read (the exporter, which has history,
interpolates instead, at no read cost).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from compose.alerts import PRODUCTION, AlertThresholds
from scv.config.settings import Settings
from scv.exporter.facts import PartitionLag, Probe, SourceFacts
from scv.exporter.kafka_lag import replicator_endpoints
from scv.exporter.probes import Probes
from scv.exporter.prometheus import PrometheusQueries
from scv.exporter.sources import SourceReader
from scv.exporter.status import Finding, Level, ReplicatorView, SourceVerdict, judge_platform, judge_source
from scv.kafka.admin import KafkaAdmin

__all__ = ["DEAD_LETTER_WINDOW", "StatusReport", "gather"]

T = TypeVar("T")
DEAD_LETTER_WINDOW = "15m"


@dataclass(frozen=True)
class StatusReport:
    taken_at: float
    group: str
    replicator: ReplicatorView
    sources: tuple[SourceVerdict, ...]
    platform: tuple[Finding, ...]
    probes: tuple[Probe, ...] = field(default=())

    @property
    def level(self) -> Level:
        levels = [v.level for v in self.sources] + [f.level for f in self.platform]
        return max(levels, default=Level.OK)

    @property
    def exit_code(self) -> int:
        return 1 if self.level is Level.FAIL else 0

    def as_dict(self) -> dict[str, Any]:
        def finding(f: Finding) -> dict[str, str]:
            return {"level": f.level.name, "reason": f.reason, "next": f.next_command}

        return {
            "taken_at": self.taken_at,
            "level": self.level.name,
            "group": self.group,
            "replicators": {"members": self.replicator.members, "endpoints": list(self.replicator.endpoints)},
            "platform": [finding(f) for f in self.platform],
            "dependencies": {
                p.dependency: {"up": p.up, "seconds": round(p.seconds, 4), "error": p.error}
                for p in self.probes
            },
            "sources": [
                {
                    "source": v.source,
                    "level": v.level.name,
                    "connector": v.facts.connector_state,
                    "tasks": {str(t.id): t.state for t in v.facts.tasks},
                    "slot": None
                    if v.facts.slot is None
                    else {
                        "name": v.facts.slot.name,
                        "exists": v.facts.slot.exists,
                        "active": v.facts.slot.active,
                        "retained_wal_bytes": v.facts.slot.retained_wal_bytes,
                    },
                    "heartbeat_age_seconds": v.facts.heartbeat_age_s,
                    "lag_records": v.lag_records,
                    "lag_seconds": v.lag_seconds,
                    "freshness_p99_seconds": v.freshness_p99_s,
                    "dead_letters": v.dead_letters,
                    "findings": [finding(f) for f in v.findings],
                }
                for v in self.sources
            ],
        }


@dataclass(frozen=True)
class _KafkaView:
    members: int
    endpoints: tuple[str, ...]
    lag: tuple[PartitionLag, ...]
    heartbeat_ages: dict[str, float]


def _kafka(settings: Settings, group: str, heartbeat_topics: list[str], now: float) -> _KafkaView:
    admin = KafkaAdmin(settings.kafka.bootstrap_servers, timeout_s=settings.exporter.timeout_s)
    described = admin.consumer_groups(only=[group])
    committed = admin.group_offsets(group)
    marks = admin.watermarks_of(committed)
    beats = admin.watermarks(heartbeat_topics) if heartbeat_topics else {}
    waiting = {
        p: max(c, marks[p][0])
        for p, c in committed.items()
        if p in marks and max(c, marks[p][0]) < marks[p][1]
    }
    newest = {p: high - 1 for p, (low, high) in beats.items() if high > low}
    times = admin.record_times({**waiting, **newest})
    lag = []
    for (topic, number), offset in sorted(committed.items()):
        if (topic, number) not in marks:
            continue  # a deleted topic
        low, high = marks[(topic, number)]
        if (topic, number) not in waiting:
            seconds: float | None = 0.0
        elif (topic, number) in times:
            seconds = max(0.0, now - times[(topic, number)].timestamp())
        else:
            seconds = None  # the record could not be read in time: unknown, not zero
        lag.append(PartitionLag(topic, number, offset, low, high, seconds))
    ages: dict[str, float] = {}
    for topic, number in newest:
        if (topic, number) in times:
            age = max(0.0, now - times[(topic, number)].timestamp())
            ages[topic] = min(ages.get(topic, age), age)
    info = described[0] if described else None
    return _KafkaView(
        members=len(info.members) if info else 0,
        endpoints=replicator_endpoints(info) if info else (),
        lag=tuple(lag),
        heartbeat_ages=ages,
    )


def _call(fn: Callable[[], T]) -> tuple[T | None, str | None]:
    try:
        return fn(), None
    except Exception as exc:  # reported on the screen as the reason a figure is missing
        text = str(exc).strip()
        return None, text.splitlines()[0] if text else type(exc).__name__


def gather(settings: Settings, group: str, thresholds: AlertThresholds = PRODUCTION) -> StatusReport:
    now = time.time()
    timeout = settings.exporter.timeout_s

    def read_sources() -> list[SourceFacts]:
        with SourceReader(settings.connect, timeout_s=timeout) as reader:
            return [r.facts for r in reader.read()]

    def read_probes() -> list[Probe]:
        probes = Probes(settings.registry, settings.store, timeout_s=timeout)
        try:
            return probes.read()
        finally:
            probes.close()

    prom = PrometheusQueries(settings.exporter.prometheus_url, timeout)
    with ThreadPoolExecutor(max_workers=4) as pool:
        sources_f = pool.submit(_call, read_sources)
        probes_f = pool.submit(read_probes)
        fresh_f = pool.submit(_call, prom.freshness_p99)
        dead_f = pool.submit(_call, lambda: prom.dead_letters(DEAD_LETTER_WINDOW))
        sources, connect_error = sources_f.result()
        heartbeat_topics = [s.heartbeat_topic for s in sources or []]
        kafka, kafka_error = _call(lambda: _kafka(settings, group, heartbeat_topics, now))
        probes = probes_f.result()
        freshness, fresh_error = fresh_f.result()
        dead_by_topic, dead_error = dead_f.result()
    # Connect and Kafka were asked by the readers themselves: their failures are dependencies down.
    probes += [
        Probe(name, False, 0.0, error)
        for name, error in (("connect", connect_error), ("kafka", kafka_error))
        if error
    ]
    prometheus_error = fresh_error or dead_error
    dead_by_source: dict[str, float] | None = None
    if dead_by_topic is not None:
        dead_by_source = {}
        for topic, count in dead_by_topic.items():
            source = topic.split(".", 1)[0]
            dead_by_source[source] = dead_by_source.get(source, 0.0) + count
    view = ReplicatorView(
        group=group,
        members=kafka.members if kafka else 0,
        endpoints=kafka.endpoints if kafka else (),
        freshness_p99_s=freshness,
        dead_letters=dead_by_source,
        dead_letter_window=DEAD_LETTER_WINDOW,
    )
    verdicts = []
    for facts in sources or []:
        age = kafka.heartbeat_ages.get(facts.heartbeat_topic) if kafka else None
        own = tuple(p for p in kafka.lag if p.topic in facts.topics) if kafka else ()
        verdicts.append(judge_source(replace(facts, heartbeat_age_s=age), own, view, thresholds))
    platform = judge_platform(probes, prometheus_error)
    return StatusReport(now, group, view, tuple(verdicts), tuple(platform), tuple(probes))

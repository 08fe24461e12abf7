"""`scv status` judges each source: OK, WARN or FAIL, the reason, the next command
(scv/exporter/status.py). Thresholds are the production alert thresholds."""

from __future__ import annotations

from dataclasses import replace

import pytest

from compose.alerts import PRODUCTION
from scv.exporter.facts import PartitionLag, Probe, SlotFacts, SourceFacts, TaskFacts
from scv.exporter.status import Level, ReplicatorView, judge_platform, judge_source

GIB = 1024**3

HEALTHY = SourceFacts(
    source="crm",
    connector="scv-crm",
    connector_state="RUNNING",
    connector_error=None,
    tasks=(TaskFacts(0, "RUNNING"),),
    topics=("crm.public.customers",),
    heartbeat_topic="__debezium-heartbeat.crm",
    database_up=True,
    slot=SlotFacts("scv_crm", exists=True, active=True, retained_wal_bytes=1024 * 1024),
    heartbeat_age_s=3.0,
)
REPLICATOR = ReplicatorView(
    "scv-replicator", members=1, endpoints=("127.0.0.1:9400",), freshness_p99_s={"crm": 0.3}, dead_letters={}
)
CAUGHT_UP = (PartitionLag("crm.public.customers", 0, 100, 0, 100, 0.0),)


def _lag(records: int, seconds: float) -> tuple[PartitionLag, ...]:
    return (PartitionLag("crm.public.customers", 0, 100, 0, 100 + records, seconds),)


CASES = [
    pytest.param(HEALTHY, CAUGHT_UP, REPLICATOR, Level.OK, None, id="healthy"),
    pytest.param(
        replace(HEALTHY, connector_state="PAUSED", slot=replace(HEALTHY.slot, active=False)),
        CAUGHT_UP,
        REPLICATOR,
        Level.WARN,
        "scv sources resume crm",
        id="paused-connector",
    ),
    pytest.param(
        replace(HEALTHY, tasks=(TaskFacts(0, "FAILED", "ConnectException: walsender terminated"),)),
        CAUGHT_UP,
        REPLICATOR,
        Level.FAIL,
        "scv sources status crm",
        id="failed-task",
    ),
    pytest.param(
        replace(HEALTHY, connector_state="FAILED", connector_error="boom"),
        CAUGHT_UP,
        REPLICATOR,
        Level.FAIL,
        "scv sources status crm",
        id="failed-connector",
    ),
    pytest.param(
        replace(HEALTHY, slot=replace(HEALTHY.slot, retained_wal_bytes=3 * GIB)),
        CAUGHT_UP,
        REPLICATOR,
        Level.WARN,
        "scv sources status crm",
        id="slot-retains-wal",
    ),
    pytest.param(
        replace(HEALTHY, slot=replace(HEALTHY.slot, retained_wal_bytes=20 * GIB)),
        CAUGHT_UP,
        REPLICATOR,
        Level.FAIL,
        "scv sources status crm",
        id="slot-retains-critical-wal",
    ),
    pytest.param(
        replace(HEALTHY, slot=SlotFacts("scv_crm", exists=False)),
        CAUGHT_UP,
        REPLICATOR,
        Level.FAIL,
        "scv sources resnapshot crm",
        id="slot-missing",
    ),
    pytest.param(
        replace(HEALTHY, slot=replace(HEALTHY.slot, active=False)),
        CAUGHT_UP,
        REPLICATOR,
        Level.WARN,
        "scv stack logs connect",
        id="slot-inactive-while-running",
    ),
    pytest.param(HEALTHY, _lag(50, 30.0), REPLICATOR, Level.WARN, "/livez", id="lagging"),
    pytest.param(HEALTHY, _lag(5000, 600.0), REPLICATOR, Level.FAIL, "/livez", id="lag-above-alert"),
    pytest.param(
        HEALTHY,
        _lag(5, 3.0),
        replace(REPLICATOR, members=0, endpoints=()),
        Level.FAIL,
        "scv consume",
        id="no-replicator",
    ),
    pytest.param(HEALTHY, _lag(5, 3.0), REPLICATOR, Level.OK, None, id="small-lag-is-ok"),
    pytest.param(
        replace(HEALTHY, heartbeat_age_s=600.0),
        CAUGHT_UP,
        REPLICATOR,
        Level.WARN,
        "scv stack logs connect",
        id="stale-heartbeat",
    ),
    pytest.param(
        HEALTHY,
        CAUGHT_UP,
        replace(REPLICATOR, freshness_p99_s={"crm": 1.7}),
        Level.WARN,
        "capture/delivery",
        id="freshness-over-objective",
    ),
    pytest.param(
        HEALTHY,
        CAUGHT_UP,
        replace(REPLICATOR, dead_letters={"crm": 3.0}),
        Level.WARN,
        "record_dead_lettered",
        id="dead-letters",
    ),
    pytest.param(
        replace(HEALTHY, database_up=False, database_error="password authentication failed", slot=None),
        CAUGHT_UP,
        REPLICATOR,
        Level.WARN,
        "password secret",
        id="database-unreachable",
    ),
]


@pytest.mark.parametrize(("facts", "lag", "replicator", "level", "next_hint"), CASES)
def test_source_verdict(
    facts: SourceFacts,
    lag: tuple[PartitionLag, ...],
    replicator: ReplicatorView,
    level: Level,
    next_hint: str | None,
) -> None:
    verdict = judge_source(facts, lag, replicator, PRODUCTION)
    assert verdict.level is level, verdict.findings
    if next_hint is None:
        assert not verdict.findings
    else:
        assert next_hint in verdict.findings[0].next_command


def test_most_severe_finding_comes_first() -> None:
    facts = replace(HEALTHY, heartbeat_age_s=600.0, tasks=(TaskFacts(0, "FAILED", "boom"),))
    verdict = judge_source(facts, CAUGHT_UP, REPLICATOR, PRODUCTION)
    assert [f.level for f in verdict.findings] == [Level.FAIL]  # a failed task explains the heartbeat
    facts = replace(HEALTHY, heartbeat_age_s=600.0, slot=replace(HEALTHY.slot, retained_wal_bytes=20 * GIB))
    levels = [f.level for f in judge_source(facts, CAUGHT_UP, REPLICATOR, PRODUCTION).findings]
    assert levels == sorted(levels, reverse=True)
    assert levels[0] is Level.FAIL


def test_unreachable_store_fails_the_platform_and_names_its_stack_service() -> None:
    findings = judge_platform([Probe("store", False, 5.0, "timeout"), Probe("registry", True, 0.01)], None)
    assert [f.level for f in findings] == [Level.FAIL]
    assert "scv stack logs cassandra" in findings[0].next_command


def test_unreachable_prometheus_only_warns() -> None:
    findings = judge_platform([], "connection refused")
    assert [f.level for f in findings] == [Level.WARN]

"""Change events of the demo's ``core`` source, placed as the replicator places them, for tests that
drive the applier directly (unit tests over the in-memory store, integration tests over the real one)."""

from __future__ import annotations

from typing import Any

from consumer.envelope import ChangeEvent, Op
from consumer.mapping import place
from consumer.planner import Located
from scv.contracts.registration import TableMapping

__all__ = ["event", "located"]


def event(
    table: TableMapping,
    op: Op,
    key: dict[str, Any] | None,
    after: dict[str, Any] | None = None,
    ts: int = 1_000,
    unavailable: frozenset[str] = frozenset(),
) -> ChangeEvent:
    return ChangeEvent(
        source="core",
        table=table.table,
        op=op,
        key=key,
        before=None,
        after=after,
        unavailable=unavailable,
        write_ts=ts,
        snapshot=None,
        lsn=None,
    )


def located(table: TableMapping, ev: ChangeEvent) -> Located:
    return Located(ev, table, None if ev.op == "t" else place(ev, table))

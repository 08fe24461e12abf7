"""Change events of the demo's ``core`` source, placed as the replicator places them, for tests that
drive the applier directly (unit tests over the in-memory store, integration tests over the real one)."""

from __future__ import annotations

from typing import Any

from consumer.envelope import ChangeEvent, Op
from consumer.mapping import place
from consumer.planner import Located
from scv.contracts.registration import SourceMapping, TableMapping

__all__ = ["ACCOUNTS", "CARDS", "change", "event", "located"]

# The core source's accounts (keyed by customer) and cards (reached through their account).
_CORE = SourceMapping.build(
    "core",
    "core",
    [
        TableMapping("core", "public.accounts", "account", customer_key="customer_id"),
        TableMapping("core", "public.cards", "card", via_table="public.accounts", via_column="account_id"),
    ],
).tables
ACCOUNTS, CARDS = _CORE["public.accounts"], _CORE["public.cards"]


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


def change(
    table: TableMapping, op: Op, key: dict[str, Any], after: dict[str, Any] | None, ts: int
) -> Located:
    """A change event of ``table``, placed."""
    return located(table, event(table, op, key, after, ts))

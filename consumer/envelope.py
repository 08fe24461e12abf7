"""Decode the Debezium change-event envelope into a ``ChangeEvent``.

    event = to_change_event(source="crm", key=key_record, value=value_record)

Write-timestamp rule (the convergence argument, enforced here and documented in README):
    write_ts = the source commit time in microseconds (``source.ts_us``; ``ts_ms * 1000`` for
    connectors that do not send it).
- Two transactions that change the same row are serialised by PostgreSQL's row lock, so the later
  one commits later: newest source state wins whatever order, or how often, changes are applied.
- Snapshot reads carry the time the snapshot transaction read the database; a change committed after
  that streams later with a later commit time and wins over the snapshot row, even if the snapshot
  row is re-applied after it.
- Limits: (1) several changes to one row inside ONE transaction share a commit time; the replicator
  collapses them within a batch (last wins) but a batch boundary between them can tie, and Cassandra
  then keeps the greater cell value. (2) The rule trusts the source clock: a clock step backwards on
  the SOR host can make a later change lose. (3) Timestamps are in the CQL microsecond domain, so a
  manual write without USING TIMESTAMP competes with them like any newer change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from consumer.exceptions import DecodeError
from consumer.logical import UNAVAILABLE

__all__ = ["ChangeEvent", "Op", "to_change_event", "write_timestamp"]

Op = Literal["c", "u", "d", "r", "t"]
_OPS: frozenset[str] = frozenset({"c", "u", "d", "r", "t"})


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    source: str
    table: str  # schema.table
    op: Op
    key: dict[str, Any] | None
    before: dict[str, Any] | None
    # Complete after-image minus the columns Debezium could not read (unchanged TOAST).
    after: dict[str, Any] | None
    unavailable: frozenset[str]
    write_ts: int
    snapshot: str | None
    lsn: int | None

    @property
    def ts_seconds(self) -> float:
        return self.write_ts / 1_000_000


def write_timestamp(source_info: dict[str, Any]) -> int:
    ts_us = source_info.get("ts_us")
    if isinstance(ts_us, int) and ts_us > 0:
        return ts_us
    ts_ms = source_info.get("ts_ms")
    if isinstance(ts_ms, int) and ts_ms > 0:
        return ts_ms * 1000
    raise DecodeError("the envelope's source block has neither ts_us nor ts_ms: not a Debezium event")


def _split_unavailable(image: dict[str, Any]) -> tuple[dict[str, Any], frozenset[str]]:
    missing = frozenset(name for name, value in image.items() if value is UNAVAILABLE)
    if not missing:
        return image, missing
    return {k: v for k, v in image.items() if k not in missing}, missing


def to_change_event(source: str, key: dict[str, Any] | None, value: dict[str, Any]) -> ChangeEvent:
    op = value.get("op")
    info = value.get("source")
    if op not in _OPS or not isinstance(info, dict):
        raise DecodeError(f"not a Debezium change event (op={op!r}); is this topic a CDC topic?")
    schema, table = info.get("schema"), info.get("table")
    if not schema or not table:
        raise DecodeError("the envelope's source block names no schema/table")
    after = value.get("after")
    unavailable: frozenset[str] = frozenset()
    if after is not None:
        after, unavailable = _split_unavailable(after)
    before = value.get("before")
    if before is not None:
        before, _ = _split_unavailable(before)
    lsn = info.get("lsn")
    return ChangeEvent(
        source=source,
        table=f"{schema}.{table}",
        op=op,
        key=key,
        before=before,
        after=after,
        unavailable=unavailable,
        write_ts=write_timestamp(info),
        snapshot=info.get("snapshot") if info.get("snapshot") not in (None, "false") else None,
        lsn=lsn if isinstance(lsn, int) else None,
    )

"""Fix what `scv verify` found, through the same path every change takes.

    actions = repair(settings, session, report)

- missing or different rows: Debezium re-reads exactly those rows (an incremental snapshot whose
  filter selects their keys, sent through the source's signal table); the replicator applies the
  re-emitted rows like any others, so nothing writes the view behind the pipeline's back;
- extra rows and extra copies (held twice), and every row of a source that is no longer registered:
  deleted from the view, with their index entries, at a write timestamp above their own, so a later
  real change of the same entity still wins.
The caller then verifies the repaired rows again (`scv verify --repair` does).
"""

from __future__ import annotations

import json
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from cassandra.cluster import Session
from psycopg import sql

from connectors.connect import ConnectClient
from connectors.exceptions import SourceError
from connectors.operate import connect_as_source
from scv.config.settings import Settings
from scv.contracts.naming import SourceNames
from scv.verify.reconcile import Finding, VerifyReport
from store.index import EntityIndex
from store.mutations import (
    DeleteIndex,
    DeleteRow,
    EntityRef,
    Mutation,
    RowKey,
    UnlinkChild,
    UnlinkKeyChild,
    Unpark,
)
from store.writer import ViewWriter

__all__ = ["RepairActions", "repair"]

# Debezium's signal table keeps `data` in a varchar(2048) (the layout `scv sources grant-sql`
# creates): keys are sent a chunk at a time so each signal's JSON fits.
_SIGNAL_DATA_MAX = 2048
_KEYS_PER_SIGNAL = 100


@dataclass
class RepairActions:
    resnapshotted: dict[str, int] = field(default_factory=dict)  # "source/table" -> rows re-read
    deleted: int = 0
    signals: list[str] = field(default_factory=list)

    def describe(self) -> list[str]:
        lines = [
            f"re-read {n} rows of {table} through an incremental snapshot"
            for table, n in self.resnapshotted.items()
        ]
        if self.deleted:
            lines.append(f"deleted {self.deleted} rows from the view")
        return lines


def _signal_payloads(table: str, filters: list[str]) -> list[str]:
    return [
        json.dumps(
            {
                "data-collections": [table],
                "type": "incremental",
                "additional-conditions": [{"data-collection": table, "filter": condition}],
            }
        )
        for condition in filters
    ]


def _resnapshot(
    settings: Settings, source: str, rows: dict[str, list[tuple[Any, ...]]], actions: RepairActions
) -> None:
    """Signal Debezium to re-read these rows (table -> key values) of one source."""
    names = SourceNames(source)
    with ConnectClient(settings.connect.url) as connect:
        config = connect.get_config(names.connector)
    if config is None:
        raise SourceError(f"source {source} has no connector {names.connector}; re-run `scv sources add`")
    signal_table = config.get("signal.data.collection")
    if not signal_table:
        raise SourceError(
            f"connector {names.connector} has no signal.data.collection; re-run `scv sources add`"
        )
    schema, table_name = signal_table.split(".", 1)
    with connect_as_source(config, settings.connect, source) as conn:
        from scv.verify.scope import TableScope
        from scv.verify.sides import SourceSide

        for table, keys in rows.items():
            key_columns = _key_columns(conn, table)
            side = SourceSide(conn, TableScope(source, table, "", key_columns, (), 0))
            filters: list[str] = []
            for start in range(0, len(keys), _KEYS_PER_SIGNAL):
                chunk = keys[start : start + _KEYS_PER_SIGNAL]
                # Halve a chunk whose JSON would not fit the signal table's column.
                pending = [chunk]
                while pending:
                    part = pending.pop()
                    condition = side.key_filter(part)
                    if len(_signal_payloads(table, [condition])[0]) > _SIGNAL_DATA_MAX and len(part) > 1:
                        pending += [part[: len(part) // 2], part[len(part) // 2 :]]
                    else:
                        filters.append(condition)
            for payload in _signal_payloads(table, filters):
                signal_id = f"scv-verify-{uuid.uuid4().hex[:24]}"
                conn.execute(
                    sql.SQL("INSERT INTO {} (id, type, data) VALUES (%s, 'execute-snapshot', %s)").format(
                        sql.Identifier(schema, table_name)
                    ),
                    (signal_id, payload),
                )
                actions.signals.append(signal_id)
            actions.resnapshotted[f"{source}/{table}"] = len(keys)


def _key_columns(conn: Any, table: str) -> tuple[tuple[str, str], ...]:
    from connectors.database import read_table

    facts = read_table(conn, table)
    return tuple((name, facts.columns[name].type) for name in facts.primary_key)


def _delete(
    session: Session,
    keyspace: str,
    findings: list[Finding],
    actions: RepairActions,
    *,
    only_disowned: bool = False,
) -> None:
    """Delete extra rows (or, ``only_disowned``, the copies the index does not point at), with their
    index entries when those point at them."""
    index = EntityIndex(session, keyspace)
    writer = ViewWriter(session, keyspace)
    now = int(time.time() * 1_000_000)
    targets: list[tuple[EntityRef, str, str | None]] = []
    for finding in findings:
        if finding.entity_id is not None and finding.customer_id is not None:
            ref = EntityRef(finding.source, finding.table, finding.entity_id)
            targets.append((ref, finding.customer_id, finding.kind))
    entries = index.get_many(ref for ref, _customer, _kind in targets)
    mutations: list[Mutation] = []
    for ref, customer, found_kind in targets:
        entry = entries.get(ref)
        if only_disowned and (entry is None or entry.customer_id == customer):
            continue
        kind = found_kind or (entry.kind if entry is not None else None)
        rows = index.rows_many([RowKey(customer, kind, ref.source, ref.table, ref.entity_id)]) if kind else {}
        row = next(iter(rows.values()), None) if rows else None
        ts = max(now, (row.source_ts_us + 1) if row else 0, (entry.owner_ts + 1) if entry else 0)
        if kind is not None:
            mutations.append(DeleteRow(RowKey(customer, kind, ref.source, ref.table, ref.entity_id), ts))
        if entry is not None and entry.customer_id == customer:
            mutations.append(DeleteIndex(ref, ts))
            if isinstance(entry.parent, EntityRef):
                mutations.append(UnlinkChild(entry.parent, ref, ts))
            elif entry.parent is not None:
                mutations.append(UnlinkKeyChild(entry.parent, ref, ts))
            mutations.append(Unpark(ref, ts))
        actions.deleted += 1
    writer.apply(mutations)


def _delete_removed_source(
    session: Session, keyspace: str, source: str, table: str, actions: RepairActions
) -> None:
    index = EntityIndex(session, keyspace)
    writer = ViewWriter(session, keyspace)
    now = int(time.time() * 1_000_000)
    mutations: list[Mutation] = []
    for entry in index.table_entries([(source, table)]):
        ts = max(now, entry.owner_ts + 1)
        row = RowKey(entry.customer_id, entry.kind, source, table, entry.ref.entity_id)
        mutations += [DeleteRow(row, ts), DeleteIndex(entry.ref, ts)]
        actions.deleted += 1
        if len(mutations) >= 2000:
            writer.apply(mutations)
            mutations = []
    writer.apply(mutations)


def repair(settings: Settings, session: Session, report: VerifyReport) -> RepairActions:
    actions = RepairActions()
    reread: dict[str, dict[str, list[tuple[Any, ...]]]] = defaultdict(lambda: defaultdict(list))
    extras: list[Finding] = []
    strays: list[Finding] = []
    for finding in report.findings:
        keys = reread[finding.source][finding.table]
        wanted = finding.problem in ("missing", "differs", "duplicate") and finding.key_values is not None
        if wanted and finding.key_values not in keys:
            assert finding.key_values is not None
            keys.append(finding.key_values)
        if finding.problem == "extra":
            extras.append(finding)
        elif finding.problem == "duplicate":
            strays.append(finding)
        elif finding.problem == "removed_source":
            _delete_removed_source(session, settings.store.keyspace, finding.source, finding.table, actions)
    if extras:
        _delete(session, settings.store.keyspace, extras, actions)
    if strays:
        # Only the copies the index disowns go; the one it points to is re-read like the rest.
        _delete(session, settings.store.keyspace, strays, actions, only_disowned=True)
    for source, tables in sorted(reread.items()):
        tables_with_keys = {table: keys for table, keys in tables.items() if keys}
        if tables_with_keys:
            _resnapshot(settings, source, tables_with_keys, actions)
    return actions

"""Reconcile systems of record with the view: which entities are missing, extra or different.

    report = verify(settings, VerifyOptions(source="crm"), progress)
    report.findings            # [Finding(problem="differs", source="crm", table=..., entity_id=..., ...)]

How (the data-diff way, adapted to a view partitioned by customer rather than ordered by key):
1. each table is reduced to bucket sums on each side: PostgreSQL hashes every row in SQL
   (scv/verify/canonical.py) and sums the hashes per bucket of the key hash; the view is scanned once
   for every table in scope and reduced the same way. A clean table costs one scan on each side;
2. only the buckets whose sums differ are read again, row by row, on both sides, naming the rows that
   are missing from the view, extra in it (a delete that never arrived, a source database restored
   from an older backup), held twice, or different;
3. what differs may be a change in flight: the verifier waits until the replicator's group has
   caught up with the source's topics, and has done the settling work its moves recorded (a move a
   killed worker left half done is finished up to half a minute later: store/intents.py), and checks
   those rows again; only what still differs is reported;
4. rows of sources that are no longer registered are reported too (``removed_source``).
Memory holds the bucket sums and the rows of differing buckets, never a whole table.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import psycopg
import structlog
from cassandra.cluster import Session
from psycopg.rows import TupleRow

from connectors.connect import ConnectClient
from connectors.database import read_table
from connectors.exceptions import SourceError
from connectors.operate import connect_as_source
from connectors.registered import registered_mappings
from consumer.mapping import entity_id_of
from scv.config.settings import Settings
from scv.contracts.naming import SourceNames
from scv.contracts.registration import SourceMapping
from scv.kafka.admin import KafkaAdmin
from scv.verify.scope import TableScope, table_scope
from scv.verify.sides import BucketSums, SourceRow, SourceSide, ViewRow, ViewSide
from store.intents import PendingIntent, SettleIntents

__all__ = [
    "Finding",
    "Progress",
    "TableResult",
    "VerifyOptions",
    "VerifyReport",
    "recheck",
    "verify",
    "wait_intents_done",
]

# Every intent was written before this (year 2262, in microseconds).
_FOREVER_US = 2**63 - 1


class PendingSettling(Protocol):
    """The replicator's recorded settling work, as verify asks for it (store/intents.py)."""

    def pending(self, written_before_us: int) -> list[PendingIntent]: ...


log = structlog.get_logger(__name__)

Problem = Literal["missing", "extra", "duplicate", "differs", "removed_source"]
Table = tuple[str, str]


@dataclass(frozen=True)
class Finding:
    problem: Problem
    source: str
    table: str
    entity_id: str | None
    customer_id: str | None
    detail: str
    key_hash: str | None = None
    # The source row's key column values (for a repair's snapshot filter); None when it has none.
    key_values: tuple[Any, ...] | None = None
    kind: str | None = None

    def describe(self) -> str:
        where = f"{self.source}/{self.table}"
        entity = f" entity {self.entity_id}" if self.entity_id is not None else ""
        customer = f" of customer {self.customer_id}" if self.customer_id else ""
        return f"{self.problem}: {where}{entity}{customer}: {self.detail}"

    def to_json(self) -> dict[str, Any]:
        return {
            "problem": self.problem,
            "source": self.source,
            "table": self.table,
            "entity_id": self.entity_id,
            "customer_id": self.customer_id,
            "detail": self.detail,
        }


@dataclass
class TableResult:
    source: str
    table: str
    rows_checked: int = 0
    buckets_differing: int = 0


@dataclass
class VerifyReport:
    tables: list[TableResult] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def drift(self) -> bool:
        return bool(self.findings)

    def to_json(self) -> dict[str, Any]:
        return {
            "drift": self.drift,
            "tables": [
                {
                    "source": t.source,
                    "table": t.table,
                    "rows_checked": t.rows_checked,
                    "buckets_differing": t.buckets_differing,
                }
                for t in self.tables
            ],
            "findings": [f.to_json() for f in self.findings],
        }


@dataclass(frozen=True)
class VerifyOptions:
    source: str | None = None
    table: str | None = None
    # Rows sampled per table; None: every row (--all).
    sample: int | None = None
    # The replicator's consumer group (how far it has caught up); None: the settings' group.
    group: str | None = None
    buckets: int = 4096
    # How long to wait for the replicator to catch up (and do its recorded settling work) before
    # re-checking what differs.
    settle_timeout_s: float = 120.0


class Progress:
    """What a long verification reports as it goes (the CLI draws it; tests ignore it)."""

    def phase(self, description: str, total: int | None = None) -> None:
        """A new phase: ``total`` units of work to come, or None when unknown."""

    def advance(self, amount: int = 1) -> None:
        """Work done in the current phase."""


# -- the sides, per source ----------------------------------------------------------------------


@dataclass
class _Source:
    mapping: SourceMapping
    config: dict[str, str]
    conn: psycopg.Connection[TupleRow]
    scopes: dict[str, TableScope]


@contextmanager
def _sources(settings: Settings, options: VerifyOptions) -> Iterator[dict[str, _Source]]:
    registered = registered_mappings(settings.store)
    if options.source is not None and options.source not in registered:
        known = ", ".join(sorted(registered)) or "none"
        raise SourceError(f"source {options.source} is not registered (registered: {known})")
    opened: dict[str, _Source] = {}
    try:
        with ConnectClient(settings.connect.url) as connect:
            for name, mapping in sorted(registered.items()):
                if options.source is not None and name != options.source:
                    continue
                tables = [t for t in mapping.tables if options.table in (None, t)]
                if not tables:
                    continue
                config = connect.get_config(SourceNames(name).connector)
                if config is None:
                    raise SourceError(
                        f"source {name} is registered but has no connector; re-run `scv sources add` for it"
                    )
                conn = connect_as_source(config, settings.connect, name)
                # One snapshot for every query of the run: bucket sums and the rows read again agree.
                conn.autocommit = False
                conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
                scopes = {t: table_scope(mapping.tables[t], read_table(conn, t)) for t in tables}
                opened[name] = _Source(mapping, config, conn, scopes)
        if options.table is not None and not any(s.scopes for s in opened.values()):
            raise SourceError(f"no registered source captures table {options.table}")
        yield opened
    finally:
        for source in opened.values():
            source.conn.close()


# -- comparing ----------------------------------------------------------------------------------


def _differing(source: BucketSums, view: BucketSums) -> set[int]:
    return {b for b in source.keys() | view.keys() if source.get(b) != view.get(b)}


def _entity_id(row: SourceRow) -> str:
    return entity_id_of(list(row.key))


def _compare(
    scope: TableScope, source_rows: Mapping[str, SourceRow], view_rows: Mapping[str, list[ViewRow]]
) -> list[Finding]:
    findings: list[Finding] = []
    for key in sorted(source_rows.keys() | view_rows.keys()):
        pg, copies = source_rows.get(key), view_rows.get(key, [])
        if pg is not None and not copies:
            findings.append(
                Finding(
                    "missing",
                    scope.source,
                    scope.table,
                    _entity_id(pg),
                    None,
                    "in the system of record, not in the view",
                    key,
                    pg.key,
                    scope.kind,
                )
            )
            continue
        if pg is None:
            for copy in copies:
                findings.append(
                    Finding(
                        "extra",
                        scope.source,
                        scope.table,
                        copy.entity_id,
                        copy.customer_id,
                        "in the view, no longer in the system of record",
                        key,
                        None,
                        copy.kind,
                    )
                )
            continue
        if len(copies) > 1:
            customers = ", ".join(sorted(c.customer_id for c in copies))
            for copy in copies:
                findings.append(
                    Finding(
                        "duplicate",
                        scope.source,
                        scope.table,
                        copy.entity_id,
                        copy.customer_id,
                        f"held in {len(copies)} partitions ({customers})",
                        key,
                        pg.key,
                        copy.kind,
                    )
                )
        elif copies[0].row_hash != pg.row_hash:
            findings.append(
                Finding(
                    "differs",
                    scope.source,
                    scope.table,
                    copies[0].entity_id,
                    copies[0].customer_id,
                    "attributes differ from the system of record",
                    key,
                    pg.key,
                    copies[0].kind,
                )
            )
    return findings


def _recheck(
    finding: Finding, scope: TableScope, side: SourceSide, view: ViewSide, copies: list[ViewRow]
) -> Finding | None:
    """The finding if it still holds after the replicator caught up, else None."""
    assert finding.key_hash is not None
    pg = side.rows_by_key([finding.key_hash]).get(finding.key_hash)
    now: list[ViewRow] = [r for c in copies if (r := view.read(c, scope)) is not None]
    if not now and pg is not None:
        found = view.find(scope, _entity_id(pg), finding.key_hash)
        now = [found] if found is not None else []
    still = _compare(scope, {finding.key_hash: pg} if pg else {}, {finding.key_hash: now} if now else {})
    return next((f for f in still if f.problem == finding.problem), still[0] if still else None)


def _wait_caught_up(settings: Settings, group: str, topics: list[str], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    with KafkaAdmin(settings.kafka.bootstrap_servers) as kafka:
        while time.monotonic() < deadline:
            if kafka.group_lag(group, topics) == 0:
                return True
            time.sleep(0.5)
    return False


def wait_intents_done(intents: PendingSettling, timeout_s: float, poll_s: float = 0.5) -> bool:
    """Wait until no settling work recorded by the replicator is pending (store/intents.py): a move a
    killed worker left half done is finished by the next settling round, up to
    ``settle_intent_grace_s + parked_settle_s`` later. True when none is left within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while intents.pending(written_before_us=_FOREVER_US):
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll_s)
    return True


def _settle(
    settings: Settings,
    session: Session,
    options: VerifyOptions,
    sources: dict[str, _Source],
    view: ViewSide,
    candidates: list[tuple[Finding, list[ViewRow]]],
    progress: Progress,
) -> list[Finding]:
    """Step 3: re-check what differs once the replicator has applied what was in flight, and done the
    settling work its moves recorded."""
    if not candidates:
        return []
    group = options.group or settings.consumer.group_id
    topics = sorted(
        {SourceNames(f.source).topic(f.table) for f, _copies in candidates if f.problem != "removed_source"}
    )
    started = time.monotonic()
    progress.phase(f"waiting for {group} to catch up before re-checking {len(candidates)} rows")
    if not _wait_caught_up(settings, group, topics, options.settle_timeout_s):
        log.warning("verify.replicator_behind", group=group, timeout_s=options.settle_timeout_s)
    progress.phase("waiting for the replicator's recorded settling work (moves) to be done")
    left_s = max(0.0, options.settle_timeout_s - (time.monotonic() - started))
    if not wait_intents_done(SettleIntents(session, settings.store.keyspace), left_s):
        log.warning("verify.settling_pending", timeout_s=options.settle_timeout_s)
    progress.phase("re-checking", len(candidates))
    confirmed = []
    for finding, copies in candidates:
        source = sources[finding.source]
        source.conn.rollback()  # a fresh snapshot: the rows as they are now
        scope = source.scopes[finding.table]
        still = _recheck(finding, scope, SourceSide(source.conn, scope), view, copies)
        if still is not None:
            confirmed.append(still)
        progress.advance()
    return confirmed


def recheck(
    settings: Settings, session: Session, options: VerifyOptions, findings: list[Finding], progress: Progress
) -> list[Finding]:
    """Check these findings again (once the replicator has caught up): what still holds."""
    view = ViewSide(session, settings.store.keyspace)
    rows = [f for f in findings if f.key_hash is not None]
    with _sources(
        settings, VerifyOptions(group=options.group, settle_timeout_s=options.settle_timeout_s)
    ) as sources:
        candidates = [
            (
                f,
                [
                    ViewRow(
                        f.key_hash or "",
                        "",
                        f.customer_id,
                        f.kind or sources[f.source].scopes[f.table].kind,
                        f.entity_id,
                        0,
                    )
                ]
                if f.customer_id is not None and f.entity_id is not None
                else [],
            )
            for f in rows
            if f.source in sources and f.table in sources[f.source].scopes
        ]
        return _settle(settings, session, options, sources, view, candidates, progress)


def verify(settings: Settings, session: Session, options: VerifyOptions, progress: Progress) -> VerifyReport:
    report = VerifyReport()
    view = ViewSide(session, settings.store.keyspace)
    with _sources(settings, options) as sources:
        scopes: dict[Table, TableScope] = {
            (name, table): scope for name, source in sources.items() for table, scope in source.scopes.items()
        }
        others: dict[Table, int] = {}
        if options.sample is not None:
            candidates = _sampled(sources, view, options.sample, report, progress)
        else:
            candidates, others = _full(sources, scopes, view, options, report, progress)
        report.findings.extend(_settle(settings, session, options, sources, view, candidates, progress))
        if options.source is None and options.table is None:
            report.findings.extend(_removed_sources(others))
    return report


def _sampled(
    sources: dict[str, _Source], view: ViewSide, rows: int, report: VerifyReport, progress: Progress
) -> list[tuple[Finding, list[ViewRow]]]:
    candidates: list[tuple[Finding, list[ViewRow]]] = []
    for name, source in sources.items():
        for table, scope in source.scopes.items():
            progress.phase(f"sampling {name}/{table}", rows)
            side = SourceSide(source.conn, scope)
            result = TableResult(name, table)
            for key, pg in side.sample(rows).items():
                found = view.find(scope, _entity_id(pg), key)
                copies = [found] if found is not None else []
                for finding in _compare(scope, {key: pg}, {key: copies} if copies else {}):
                    candidates.append((finding, copies))
                result.rows_checked += 1
                progress.advance()
            report.tables.append(result)
    return candidates


def _full(
    sources: dict[str, _Source],
    scopes: dict[Table, TableScope],
    view: ViewSide,
    options: VerifyOptions,
    report: VerifyReport,
    progress: Progress,
) -> tuple[list[tuple[Finding, list[ViewRow]]], dict[Table, int]]:
    """Steps 1-2 for every table; also the rows of sources outside every scope, per table."""
    buckets = options.buckets
    source_sums: dict[Table, BucketSums] = {}
    progress.phase("hashing the systems of record", len(scopes))
    for key, scope in scopes.items():
        source_sums[key] = SourceSide(sources[scope.source].conn, scope).bucket_sums(buckets)
        progress.advance()
    progress.phase("hashing the view")
    view_sums, _kept, others = view.scan(scopes, buckets, on_row=progress.advance)
    differing = {table: _differing(source_sums[table], view_sums[table]) for table in scopes}
    candidates: list[tuple[Finding, list[ViewRow]]] = []
    for table, scope in scopes.items():
        rows = sum(n for n, _total in source_sums[table].values())
        report.tables.append(TableResult(scope.source, scope.table, rows, len(differing[table])))
    if any(differing.values()):
        progress.phase("reading the rows of differing buckets")
        _sums, kept, _ = view.scan(scopes, buckets, keep=differing, on_row=progress.advance)
        for table, scope in scopes.items():
            if not differing[table]:
                continue
            pg_rows = SourceSide(sources[scope.source].conn, scope).rows_in(buckets, differing[table])
            for finding in _compare(scope, pg_rows, kept[table]):
                assert finding.key_hash is not None
                candidates.append((finding, kept[table].get(finding.key_hash, [])))
    return candidates, others


def _removed_sources(others: Mapping[Table, int]) -> list[Finding]:
    """Rows of sources the registrations no longer name (removed without purging the view)."""
    return [
        Finding(
            "removed_source",
            source,
            table,
            None,
            None,
            f"{count} rows of a source that is no longer registered; `scv verify --repair` deletes them",
        )
        for (source, table), count in sorted(others.items())
    ]

"""Onboard and remove a source: the `scv sources add` / `remove` path, as a Python API.

    add_source(load_spec(path), get_settings())
    remove_source("crm", get_settings())

``add`` follows these steps, in this order (each is idempotent, so a re-run after any failure is safe):
1. validate against the live database and cluster; refuse on any problem;
2. write the CDC password to the Connect secret file (0600) and render the config, which holds only
   a reference to it;
3. PUT the config (creates or updates the connector);
4. wait until the connector and its task are RUNNING and the initial snapshot has finished: a
   heartbeat record newer than the PUT proves streaming started, and Debezium streams only after the
   snapshot; the per-table record counts against the row counts are reported to ``on_progress``
   (the CLI draws them as progress bars: connectors/progress.py);
5. set the registry compatibility of each topic's key/value subject;
6. write the mapping registration to the store: from here the replicator applies the source;
7. on a re-run that adds tables, snapshot the rows those tables already hold: an incremental snapshot
   (Debezium's execute-snapshot signal, while streaming goes on), waited for until their topics hold
   at least as many records as the tables had rows. Debezium's initial snapshot runs only once per
   connector, so without this the new tables' existing rows would never reach the view.

``remove`` deletes the connector, its offsets, slot, publication, registration and secret; with
``purge_view`` it first deletes the source's entities from the view (every entity its index knows,
with a write timestamp newer than any of its changes, so nothing still in flight brings one back).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
import structlog
from psycopg import sql

from connectors.connect import ConnectClient, ConnectorStatus
from connectors.database import connect_source
from connectors.exceptions import (
    ConnectError,
    OnboardingTimeout,
    SourceError,
    SourceNotFound,
    ValidationFailed,
)
from connectors.mapping import mapping_from_spec
from connectors.operate import captured_tables, resnapshot_source
from connectors.registered import registered_mappings
from connectors.registry import RegistryClient
from connectors.render import render_connector_config
from connectors.secrets import remove_connect_secret, write_connect_secret
from connectors.spec import SourceSpec
from connectors.validate import validate_source
from scv.config.settings import Settings
from scv.contracts.naming import SourceNames
from scv.contracts.registration import SourceMapping
from scv.kafka.admin import KafkaAdmin

__all__ = [
    "AddResult",
    "ProgressCallback",
    "RemoveResult",
    "SnapshotProgress",
    "add_source",
    "onboard_source",
    "register_source",
    "remove_source",
    "remove_source_report",
]

log = structlog.get_logger(__name__)

_POLL_S = 1.0
# Above this estimate a table is not COUNTed (a full scan of a big SOR table just for a progress bar
# is not worth it); the planner's estimate is close enough for a bar.
_EXACT_COUNT_LIMIT = 1_000_000


@dataclass
class AddResult:
    name: str
    connector: str
    topics: list[str]
    rows: dict[str, int]
    records: dict[str, int]
    compatibility_set: list[str] = field(default_factory=list)
    compatibility_pending: list[str] = field(default_factory=list)
    infos: list[str] = field(default_factory=list)
    # A re-run: the connector existed. Tables it did not capture before, and their rows snapshotted.
    updated: bool = False
    snapshotted: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class SnapshotProgress:
    """Where step 4 stands: the connector's phase and, per table, records written against rows."""

    connector: str
    phase: str  # starting, snapshot, streaming, or the connector's state while it is neither
    rows: dict[str, int]
    records: dict[str, int]


ProgressCallback = Callable[[SnapshotProgress], None]


@dataclass
class RemoveResult:
    name: str
    done: list[str] = field(default_factory=list)
    # SQL left for a DBA when the source is not on the stack's PostgreSQL.
    pending_sql: list[str] = field(default_factory=list)
    entities_purged: int = 0


def _row_counts(spec: SourceSpec) -> dict[str, int]:
    counts: dict[str, int] = {}
    with connect_source(spec) as conn:
        for table in spec.tables:
            schema, name = table.split(".", 1)
            ident = sql.Identifier(schema, name)
            estimate = conn.execute(
                "SELECT greatest(c.reltuples, 0)::bigint FROM pg_class c JOIN pg_namespace n "
                "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
                (schema, name),
            ).fetchone()
            if estimate is not None and estimate[0] > _EXACT_COUNT_LIMIT:
                counts[table] = int(estimate[0])
                continue
            row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(ident)).fetchone()
            counts[table] = int(row[0]) if row else 0
    return counts


def _raise_if_failed(status: ConnectorStatus | None, name: str) -> None:
    if status is None:
        raise ConnectError(f"connector {name} disappeared while waiting for it; was it removed concurrently?")
    if status.state == "FAILED" or status.failed_trace:
        trace = status.failed_trace or "(connector FAILED without a task trace)"
        raise ConnectError(
            f"connector {name} FAILED:\n{trace}\nFix the cause, then re-run `scv sources add` "
            f"(or `scv sources status {name.removeprefix('scv-')}`)"
        )


def _wait_streaming(
    spec: SourceSpec,
    settings: Settings,
    connect: ConnectClient,
    *,
    heartbeat_baseline: int,
    rows: dict[str, int],
    on_progress: ProgressCallback | None,
    timeout_s: float,
) -> dict[str, int]:
    names = spec.names
    topics = {table: names.topic(table) for table in spec.tables}
    deadline = time.monotonic() + timeout_s
    created_grace = time.monotonic() + 30
    records: dict[str, int] = dict.fromkeys(spec.tables, 0)
    report = on_progress or (lambda _progress: None)
    report(SnapshotProgress(names.connector, "starting", rows, records))
    with KafkaAdmin(settings.kafka.bootstrap_servers) as kafka:
        while True:
            status = connect.status(names.connector)
            if status is None and time.monotonic() < created_grace:
                # Right after the PUT the worker has not published the connector's status yet.
                time.sleep(_POLL_S)
                continue
            _raise_if_failed(status, names.connector)
            assert status is not None
            offsets = kafka.end_offsets([*topics.values(), names.heartbeat_topic])
            records = {table: offsets[topic] for table, topic in topics.items()}
            streaming = offsets[names.heartbeat_topic] > heartbeat_baseline
            phase = "streaming" if streaming else ("snapshot" if status.running else status.state.lower())
            report(SnapshotProgress(names.connector, phase, rows, records))
            if status.running and streaming:
                log.info("sources.streaming", source=spec.name, records=records)
                return records
            if time.monotonic() > deadline:
                raise OnboardingTimeout(
                    f"connector {names.connector} is {status.state} (tasks: "
                    f"{[t.state for t in status.tasks]}) and has not streamed yet after {timeout_s:.0f}s "
                    f"(records so far: {records}); check `scv sources status {spec.name}` and the Connect "
                    f"worker log, then re-run `scv sources add` (it is idempotent)"
                )
            time.sleep(_POLL_S)


def _set_compatibility(spec: SourceSpec, settings: Settings, result: AddResult) -> None:
    with RegistryClient(settings.registry.url) as registry:
        for table in spec.tables:
            for subject in (spec.names.subject(table, "key"), spec.names.subject(table, "value")):
                if registry.set_compatibility(subject, spec.compatibility):
                    result.compatibility_set.append(subject)
                else:
                    # An empty table has produced no record, so no schema yet: its subject appears with
                    # the first change. Re-running `add` then sets it.
                    result.compatibility_pending.append(subject)


def _register(spec: SourceSpec, settings: Settings) -> None:
    from cassandra import InvalidRequest

    from store.registrations import RegistrationStore
    from store.session import open_session

    with open_session(settings.store) as session:
        try:
            store = RegistrationStore(session, settings.store.keyspace)
        except InvalidRequest as exc:
            raise SourceError(
                f"the store has no {settings.store.keyspace}.source_registrations table ({exc}); run "
                f"`scv store migrate`, then re-run `scv sources add` (the connector is already running)"
            ) from exc
        store.put(spec.name, mapping_from_spec(spec, registered_mappings(settings.store)).to_json())


def onboard_source(
    spec: SourceSpec,
    settings: Settings,
    *,
    on_progress: ProgressCallback | None = None,
    timeout_s: float = 180,
    origin: str = "<spec>",
) -> AddResult:
    """Steps 1-6 of the module docstring; returns what was done (the CLI prints it)."""
    report = validate_source(spec, settings, origin)
    if report.problems:
        raise ValidationFailed(report.problems)
    write_connect_secret(settings.connect, spec)
    config = render_connector_config(
        spec,
        settings.kafka,
        settings.connect,
        choices=report.choices,
    )
    rows = _row_counts(spec)
    beat_topic = spec.names.heartbeat_topic
    with KafkaAdmin(settings.kafka.bootstrap_servers) as kafka:
        baseline = kafka.end_offsets([beat_topic])[beat_topic]
    with ConnectClient(settings.connect.url) as connect:
        previous = connect.get_config(spec.names.connector)
        connect.put_config(spec.names.connector, config)
        log.info("sources.connector_put", source=spec.name, connector=spec.names.connector)
        records = _wait_streaming(
            spec,
            settings,
            connect,
            heartbeat_baseline=baseline,
            rows=rows,
            on_progress=on_progress,
            timeout_s=timeout_s,
        )
    new_tables = [t for t in spec.tables if previous is not None and t not in captured_tables(previous)]
    result = AddResult(
        name=spec.name,
        connector=spec.names.connector,
        topics=[spec.names.topic(t) for t in spec.tables],
        rows=rows,
        records=records,
        infos=report.infos,
        updated=previous is not None,
    )
    _set_compatibility(spec, settings, result)
    _register(spec, settings)
    if new_tables:
        result.snapshotted = {t: rows[t] for t in new_tables}
        result.records.update(
            _snapshot_new_tables(
                spec, settings, new_tables, rows, on_progress=on_progress, timeout_s=timeout_s
            )
        )
    log.info("sources.added", source=spec.name, compatibility=spec.compatibility, snapshotted=new_tables)
    return result


def _snapshot_new_tables(
    spec: SourceSpec,
    settings: Settings,
    tables: list[str],
    rows: dict[str, int],
    *,
    on_progress: ProgressCallback | None,
    timeout_s: float,
) -> dict[str, int]:
    """Step 7: signal an incremental snapshot of ``tables``, wait until their rows are in Kafka."""
    names = spec.names
    topics = {table: names.topic(table) for table in tables}
    with KafkaAdmin(settings.kafka.bootstrap_servers) as kafka:
        before = kafka.end_offsets(topics.values())
    resnapshot_source(spec.name, settings, tables)
    report = on_progress or (lambda _progress: None)
    wanted = {table: rows[table] for table in tables}
    deadline = time.monotonic() + timeout_s
    with KafkaAdmin(settings.kafka.bootstrap_servers) as kafka:
        while True:
            ends = kafka.end_offsets(topics.values())
            records = {table: ends[topic] - before[topic] for table, topic in topics.items()}
            report(SnapshotProgress(names.connector, "incremental snapshot", wanted, records))
            if all(records[table] >= wanted[table] for table in tables):
                return records
            if time.monotonic() > deadline:
                raise OnboardingTimeout(
                    f"the incremental snapshot of {', '.join(tables)} has produced {records} of {wanted} "
                    f"records after {timeout_s:.0f}s; it goes on in the background: follow it with "
                    f"`scv sources status {spec.name}` (re-running `add` signals it again, harmlessly)"
                )
            time.sleep(_POLL_S)


def register_source(spec: SourceSpec, settings: Settings) -> AddResult:
    """Steps 5-6 alone, for a connector created another way (a Strimzi ``KafkaConnector`` rendered by
    `scv sources render --k8s`): the compatibility of the subjects that have a schema, then the mapping
    registration, from which running replicators apply the source. Idempotent."""
    result = AddResult(
        name=spec.name,
        connector=spec.names.connector,
        topics=[spec.names.topic(t) for t in spec.tables],
        rows={},
        records={},
    )
    _set_compatibility(spec, settings, result)
    _register(spec, settings)
    log.info("sources.registered", source=spec.name, compatibility=spec.compatibility)
    return result


def add_source(
    spec: SourceSpec,
    settings: Settings,
    *,
    on_progress: ProgressCallback | None = None,
    timeout_s: float = 180,
) -> None:
    """Onboard ``spec``: validated, connector RUNNING, snapshot done, registered for the replicator.

    add_source(load_spec(Path("connectors/sources/crm.yaml")), get_settings())
    """
    onboard_source(spec, settings, on_progress=on_progress, timeout_s=timeout_s)


def _is_stack_postgres(config: dict[str, str], settings: Settings) -> bool:
    local = {"127.0.0.1", "localhost", "::1", settings.postgres.host}
    host = config.get("database.hostname", "")
    return host in local and config.get("database.port", "5432") == str(settings.postgres.port)


def _wait_slot_inactive(
    admin: psycopg.Connection[psycopg.rows.TupleRow], slot: str, timeout_s: float
) -> None:
    # The walsender of a just-deleted connector lingers a moment; dropping an active slot fails.
    deadline = time.monotonic() + timeout_s
    while True:
        row = admin.execute(
            "SELECT active, active_pid FROM pg_replication_slots WHERE slot_name = %s", (slot,)
        ).fetchone()
        if row is None or not row[0]:
            return
        if time.monotonic() > deadline:
            raise ConnectError(
                f"replication slot {slot} is still active (pid {row[1]}) {timeout_s:.0f}s after the "
                f"connector was deleted; something else reads it. Stop that reader, then re-run remove"
            )
        time.sleep(0.5)


def source_names(name: str) -> SourceNames:
    """``name`` checked before anything is done with it: a source name, or ``SourceNotFound``."""
    try:
        return SourceNames(name)
    except ValueError as exc:
        raise SourceNotFound(f"{exc}; see `scv sources list` for the onboarded sources") from exc


def remove_source_report(
    name: str,
    settings: Settings,
    *,
    delete_topics_too: bool = False,
    purge_view: bool = False,
    timeout_s: float = 60,
) -> RemoveResult:
    """Delete the connector (and its offsets), the slot and publication, the registration, the secret;
    with ``purge_view``, the source's entities from the view too."""
    result = RemoveResult(name=name)
    names = source_names(name)
    connector, slot, publication = names.connector, names.slot, names.publication
    with ConnectClient(settings.connect.url) as connect:
        config = connect.get_config(connector)
        if config is not None:
            slot = config.get("slot.name", slot)
            publication = config.get("publication.name", publication)
            connect.stop(connector)
            # Offsets deleted with the connector: a later `add` of the same name must snapshot again
            # instead of resuming from an LSN whose slot no longer exists (silently losing changes).
            connect.delete_offsets(connector)
            connect.delete(connector)
            result.done.append(f"deleted connector {connector} and its offsets")
    dbname = config.get("database.dbname") if config else None
    if config is None or _is_stack_postgres(config, settings):
        with psycopg.connect(settings.postgres.dsn(), autocommit=True, connect_timeout=5) as admin:
            row = admin.execute(
                "SELECT database FROM pg_replication_slots WHERE slot_name = %s", (slot,)
            ).fetchone()
            if row is not None:
                dbname = dbname or row[0]
                _wait_slot_inactive(admin, slot, timeout_s)
                admin.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
                result.done.append(f"dropped replication slot {slot}")
        if dbname:
            with psycopg.connect(settings.postgres.dsn(dbname), autocommit=True, connect_timeout=5) as admin:
                exists = admin.execute(
                    "SELECT 1 FROM pg_publication WHERE pubname = %s", (publication,)
                ).fetchone()
                if exists:
                    admin.execute(sql.SQL("DROP PUBLICATION {}").format(sql.Identifier(publication)))
                    result.done.append(f"dropped publication {publication} in {dbname}")
    else:
        where = f"{config.get('database.hostname')}:{config.get('database.port')}"
        result.pending_sql.extend(
            [
                f"-- in database {sql.Identifier(dbname or '?').as_string(None)} on {where}",
                sql.SQL("SELECT pg_drop_replication_slot({});").format(sql.Literal(slot)).as_string(None),
                sql.SQL("DROP PUBLICATION IF EXISTS {};").format(sql.Identifier(publication)).as_string(None),
            ]
        )
    from store.registrations import RegistrationStore
    from store.session import open_session

    with open_session(settings.store) as session:
        store = RegistrationStore(session, settings.store.keyspace)
        registration = next((r for r in store.all() if r.name == name), None)
        if registration is not None and purge_view:
            result.entities_purged = _purge_view(session, settings, registration.mapping_json)
            result.done.append(f"deleted {result.entities_purged} entities of {name} from the view")
        if registration is not None:
            store.delete(name)
            result.done.append(f"deleted registration {name}")
    if remove_connect_secret(settings.connect, names):
        result.done.append("deleted the Connect secret file")
    if delete_topics_too:
        with KafkaAdmin(settings.kafka.bootstrap_servers) as kafka:
            topics = [t for t in kafka.list_topics() if names.owns_topic(t)]
            kafka.delete_topics(topics)
        if topics:
            result.done.append(f"deleted topics {', '.join(topics)}")
    if not result.done and not result.pending_sql:
        raise SourceNotFound(
            f"no connector {connector}, slot {slot}, registration or secret named {name!r}; "
            f"see `scv sources list`"
        )
    log.info("sources.removed", source=name, done=result.done)
    return result


def _purge_view(session: Any, settings: Settings, mapping_json: str) -> int:
    """Delete every entity the index knows of the source's tables: view row, index entry, link to its
    parent. The write timestamp is newer than now and than any change of the source (its index entries
    carry the newest owner times), so changes still in flight cannot bring an entity back."""
    from store.holds import HoldStore
    from store.index import EntityIndex
    from store.mutations import (
        DeleteIndex,
        DeleteKey,
        DeleteRow,
        EntityRef,
        KeyRef,
        Mutation,
        RowKey,
        UnlinkChild,
        UnlinkKeyChild,
        Unpark,
    )
    from store.truncations import TruncationLog
    from store.writer import ViewWriter

    mapping = SourceMapping.from_json(mapping_json)
    keyspace = settings.store.keyspace
    index, writer = EntityIndex(session, keyspace), ViewWriter(session, keyspace)
    tables = [(mapping.name, table) for table in mapping.tables]
    entries = list(index.table_entries(tables))
    ts = max([time.time_ns() // 1000, *(entry.owner_ts + 1 for entry in entries)])
    mutations: list[Mutation] = []
    for entry in entries:
        ref = entry.ref
        mutations.append(
            DeleteRow(RowKey(entry.customer_id, entry.kind, ref.source, ref.table, ref.entity_id), ts)
        )
        mutations.append(DeleteIndex(ref, ts))
        if isinstance(entry.parent, EntityRef):
            mutations.append(UnlinkChild(entry.parent, ref, ts))
        elif isinstance(entry.parent, KeyRef):
            mutations.append(UnlinkKeyChild(entry.parent, ref, ts))
        for name, value in entry.keys:
            mutations.append(DeleteKey(KeyRef(ref.source, ref.table, name, value), ref, ts))
        if entry.customer_id.startswith("~"):
            mutations.append(Unpark(ref, ts))  # it waited in a waiting room (consumer/mapping.py)
        if len(mutations) >= 2000:
            writer.apply(mutations)
            mutations = []
    writer.apply(mutations)
    TruncationLog(session, keyspace).forget_source(mapping.name)
    holds = HoldStore(session, keyspace)
    for hold in holds.of_sources([mapping.name]):
        holds.delete(hold.source, hold.reason)
    return len(entries)


def remove_source(name: str, settings: Settings) -> None:
    """Remove source ``name`` (connector, offsets, slot, publication, registration, secret).

        remove_source("loyalty", get_settings())
    Topics are kept (the replicator may still be draining them); the CLI's --delete-topics drops them.
    """
    try:
        remove_source_report(name, settings)
    except SourceNotFound:
        # Idempotent for callers: removing what is already gone is success.
        log.info("sources.remove_nothing", source=name)

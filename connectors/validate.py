"""`scv sources validate`: will this spec work against the live database and cluster?

    report = validate_source(spec, settings, origin="connectors/sources/crm.yaml")
    report.raise_for_problems()          # ValidationFailed listing every problem and its fix

The checks are pure functions over facts (``check_database``, ``check_cluster``) so every rule is
unit-testable; ``validate_source`` gathers the facts as the CDC user and, only when that user cannot
log in at all, asks the stack's superuser why (does the role exist? may it log in?).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import psycopg
import structlog

from connectors.database import DatabaseFacts, TableFacts, connect_source, read_facts
from connectors.exceptions import SourceError, SpecError, ValidationFailed
from connectors.render import LiveChoices
from connectors.spec import SourceSpec, TableSpec
from scv.config.settings import Settings

__all__ = ["ClusterFacts", "Report", "check_cluster", "check_database", "resolve_choices", "validate_source"]

log = structlog.get_logger(__name__)

# Column types Debezium's hash/mask column transformations apply to (they act on string values).
_STRING_TYPES = ("text", "character varying", "character", "varchar", "char", "citext", "bpchar")
# Array types Debezium 3.5 cannot carry even with include.unknown.datatypes: the column is missing
# from every change record (money[], interval[], point[], xml[], bit varying[], name[]) or always NULL
# (bit(n)[]), read from records on the local stack. Silent loss, so validation refuses them.
_UNCARRIED_ARRAYS = ("money[]", "interval[]", "point[]", "xml[]", "bit varying", "name[]", "bit(")


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    infos: list[str] = field(default_factory=list)
    # What rendering must know about the live database (publication mode, heartbeat table).
    choices: LiveChoices = field(default_factory=LiveChoices)

    @property
    def ok(self) -> bool:
        return not self.problems

    def raise_for_problems(self) -> None:
        if self.problems:
            raise ValidationFailed(self.problems)


@dataclass(frozen=True)
class ClusterFacts:
    """What Kafka Connect and Kafka already hold."""

    connector_configs: dict[str, dict[str, str]]
    topics: frozenset[str]


def _check_table_columns(
    origin: str,
    key: str,
    spec: SourceSpec,
    table: TableSpec,
    facts: TableFacts,
    tables: dict[str, TableFacts],
) -> Iterable[str]:
    cols = facts.columns
    name = facts.name

    def missing(kind: str, column: str) -> str:
        return (
            f"{origin}: {key}.{kind}: column {column!r} does not exist in {name} "
            f"(columns: {', '.join(cols)}); fix the spec"
        )

    key_column = table.key_column
    key_kind = "customer_key.column" if table.via else "customer_key"
    if key_column not in cols:
        yield missing(key_kind, key_column)
    for kind, listed in (
        ("entity_id", table.entity_id or []),
        ("keys", list(table.keys)),
        ("merge_into", [table.merge_into] if table.merge_into else []),
        (
            "contact",
            [c for c in (table.contact.value, table.contact.primary, table.contact.updated) if c]
            if table.contact
            else [],
        ),
        ("profile", list(table.profile.values())),
        ("include_columns", table.include_columns or []),
        ("exclude_columns", table.exclude_columns),
        ("hash_columns", table.hash_columns),
        ("mask_columns", table.mask_columns),
    ):
        for column in listed:
            if column not in cols:
                yield missing(kind, column)
    needed = {key_column, *(table.entity_id or facts.primary_key), *table.keys}
    if table.merge_into:
        needed.add(table.merge_into)
    for column in sorted(needed & set(table.exclude_columns)):
        yield (
            f"{origin}: {key}.exclude_columns: {column!r} identifies the customer or the entity and "
            f"must reach the replicator; remove it from exclude_columns"
        )
    for column in sorted(needed & {*table.hash_columns, *table.mask_columns}):
        yield (
            f"{origin}: {key}: {column!r} identifies the customer or the entity; hashing or masking it "
            f"would break placement. Remove it from hash_columns/mask_columns"
        )
    for kind, listed in (("hash_columns", table.hash_columns), ("mask_columns", table.mask_columns)):
        for column in listed:
            if column in cols and not cols[column].type.startswith(_STRING_TYPES):
                yield (
                    f"{origin}: {key}.{kind}: {name}.{column} is {cols[column].type}; Debezium hashes and "
                    f"masks string columns only. Drop it from {kind} or exclude_columns it instead"
                )
    captured = [
        c
        for c in cols
        if c not in table.exclude_columns and (table.include_columns is None or c in table.include_columns)
    ]
    for column in captured:
        column_type = cols[column].type
        if column_type.endswith("[]") and column_type.startswith(_UNCARRIED_ARRAYS):
            yield (
                f"{origin}: {key}: {name}.{column} is {column_type}, which Debezium cannot carry (the column "
                f"would be missing from every change, or NULL): add it to exclude_columns, or capture a text "
                f"copy kept by a trigger (e.g. a text column set to {column}::text)"
            )
    if key_column in cols and not cols[key_column].not_null and table.null_customer_key is None:
        yield (
            f"{origin}: {key}.null_customer_key: {name}.{key_column} is nullable; declare what a NULL "
            f"means (null_customer_key: dead_letter | skip) or make it NOT NULL: "
            f"ALTER TABLE {name} ALTER COLUMN {key_column} SET NOT NULL;"
        )
    via = table.via
    if via is not None and via.source is None and via.match is None:
        target = tables.get(via.table)
        if target is not None and target.exists and len(target.primary_key) != 1:
            yield (
                f"{origin}: {key}.customer_key.via: {via.via} must have a single-column primary key for "
                f"{name}.{via.column} to reference it (it has {list(target.primary_key) or 'none'})"
            )


def check_database(spec: SourceSpec, facts: DatabaseFacts, origin: str) -> Report:
    """Every rule about the source database; pure over ``facts``."""
    report = Report()
    problems, infos = report.problems, report.infos
    server, role = facts.server, facts.role
    if server.wal_level != "logical":
        problems.append(
            f"{origin}: database: wal_level is {server.wal_level!r}, logical decoding needs 'logical'. "
            f"Run as superuser: ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL"
        )
    own_slot = facts.slots.get(spec.names.slot)
    if own_slot is None and server.used_replication_slots >= server.max_replication_slots:
        problems.append(
            f"{origin}: database: no free replication slot ({server.used_replication_slots}/"
            f"{server.max_replication_slots} used). ALTER SYSTEM SET max_replication_slots = "
            f"{server.max_replication_slots + 1}; then restart (or drop an unused slot)"
        )
    if not (own_slot and own_slot.active) and server.used_wal_senders >= server.max_wal_senders:
        problems.append(
            f"{origin}: database: no free WAL sender ({server.used_wal_senders}/{server.max_wal_senders} "
            f"used). ALTER SYSTEM SET max_wal_senders = {server.max_wal_senders + 1}; then restart"
        )
    if not (role.superuser or role.replication):
        problems.append(
            f"{origin}: database.user: role {role.name} lacks REPLICATION. "
            f"ALTER ROLE {role.name} WITH REPLICATION;"
        )
    for name, table in spec.tables.items():
        key = f"tables.{name}"
        tf = facts.tables[name]
        if not tf.exists:
            problems.append(
                f"{origin}: {key}: table {name} does not exist in database {spec.database.dbname} (or is "
                f"not a table); fix the table name or create it"
            )
            continue
        if not (tf.can_select or role.superuser):
            problems.append(
                f"{origin}: {key}: {role.name} cannot read {name}. GRANT SELECT ON {name} TO {role.name};"
            )
        if not tf.primary_key:
            problems.append(
                f"{origin}: {key}: {name} has no primary key; the replicator keys entities and Debezium keys "
                f"records by it. ALTER TABLE {name} ADD PRIMARY KEY (<columns>);"
            )
        if tf.replica_identity == "n":
            problems.append(
                f"{origin}: {key}: {name} has REPLICA IDENTITY NOTHING, so updates and deletes carry no key "
                f"and cannot be applied. ALTER TABLE {name} REPLICA IDENTITY DEFAULT;"
            )
        elif tf.replica_identity in ("d", "i"):
            infos.append(
                f"{name}: REPLICA IDENTITY {'DEFAULT' if tf.replica_identity == 'd' else 'USING INDEX'}: "
                f"deletes and updates carry only the key in their before-image; the replicator resolves "
                f"the customer through its index (FULL is not needed)"
            )
        problems.extend(_check_table_columns(origin, key, spec, table, tf, facts.tables))
    report.choices = resolve_choices(spec, facts)
    problems.extend(_check_signal_and_heartbeat(spec, facts, origin))
    if not report.choices.heartbeat_action:
        infos.append(
            f"heartbeat_table {spec.heartbeat_table} does not exist: heartbeats are emitted without the "
            f"UPSERT, so on an idle database the slot may hold WAL back; `scv sources grant-sql` creates it"
        )
    problems.extend(_check_publication(spec, facts, origin, report.choices))
    problems.extend(_check_slot(spec, facts, origin, infos))
    return report


def _check_signal_and_heartbeat(spec: SourceSpec, facts: DatabaseFacts, origin: str) -> Iterable[str]:
    user = facts.role.name
    fix = f"run the output of `scv sources grant-sql {origin}` (it creates and grants it)"
    signal = facts.tables[spec.signal_table]
    if not signal.exists:
        yield f"{origin}: signal_table: {spec.signal_table} does not exist; {fix}"
    else:
        absent = {"id", "type", "data"} - set(signal.columns)
        if absent:
            yield (
                f"{origin}: signal_table: {spec.signal_table} lacks column(s) {sorted(absent)} of Debezium's "
                f"signal layout (id varchar(42) PRIMARY KEY, type varchar(32) NOT NULL, data varchar(2048))"
            )
        if not (signal.can_insert or facts.role.superuser):
            yield (
                f"{origin}: signal_table: {user} cannot write {spec.signal_table} (incremental snapshots "
                f"write window markers). "
                f"GRANT SELECT, INSERT, UPDATE, DELETE ON {spec.signal_table} TO {user};"
            )
    heartbeat = facts.tables[spec.heartbeat_table]
    if not heartbeat.exists:
        return
    if heartbeat.primary_key != ("source",):
        yield (
            f"{origin}: heartbeat_table: {spec.heartbeat_table} must be (source text PRIMARY KEY, beat_at "
            f"timestamptz NOT NULL) for the heartbeat UPSERT; {fix}"
        )
    elif not ((heartbeat.can_insert and heartbeat.can_update) or facts.role.superuser):
        yield (
            f"{origin}: heartbeat_table: {user} cannot upsert into {spec.heartbeat_table}. "
            f"GRANT SELECT, INSERT, UPDATE ON {spec.heartbeat_table} TO {user};"
        )


def resolve_choices(spec: SourceSpec, facts: DatabaseFacts) -> LiveChoices:
    """`auto` becomes `filtered` only when the CDC user may CREATE/ALTER the publication itself."""
    mode = spec.publication_autocreate
    if mode == "auto":
        owns_all = all(facts.tables[t].owned_by_user for t in _published(spec) if facts.tables[t].exists)
        mode = "filtered" if owns_all or facts.role.superuser else "disabled"
    return LiveChoices(publication_mode=mode, heartbeat_action=facts.tables[spec.heartbeat_table].exists)


def _published(spec: SourceSpec) -> list[str]:
    # What Debezium's filtered mode publishes: exactly table.include.list (the heartbeat table is not
    # captured, so in filtered mode its changes do not reach Debezium; the heartbeat topic still flows).
    return [*spec.tables, spec.signal_table]


def _check_publication(
    spec: SourceSpec, facts: DatabaseFacts, origin: str, choices: LiveChoices
) -> Iterable[str]:
    pub = facts.publication
    wanted = set(_published(spec))
    if facts.tables[spec.heartbeat_table].exists:
        wanted.add(spec.heartbeat_table)
    listed = ", ".join(sorted(wanted))
    user = facts.role.name
    if choices.publication_mode == "filtered":
        not_owned = [
            t for t in _published(spec) if facts.tables[t].exists and not facts.tables[t].owned_by_user
        ]
        if not_owned and not facts.role.superuser:
            yield (
                f"{origin}: publication_autocreate: filtered makes Debezium CREATE/ALTER the publication, "
                f"which needs {user} to own {', '.join(not_owned)}; use publication_autocreate: "
                f"disabled and run `scv sources grant-sql {origin}`"
            )
        elif pub is None and not (facts.role.can_create or facts.role.superuser):
            yield (
                f"{origin}: publication {spec.names.publication} does not exist and {user} may not create it "
                f'(filtered mode). GRANT CREATE ON DATABASE "{spec.database.dbname}" TO {user}; or create '
                f"it: CREATE PUBLICATION {spec.names.publication} FOR TABLE {listed};"
            )
        return
    if pub is None:
        yield (
            f"{origin}: publication {spec.names.publication} does not exist and {user} does not own the "
            f"tables to create it. As the tables' owner: "
            f"CREATE PUBLICATION {spec.names.publication} FOR TABLE {listed}; (see `scv sources grant-sql`)"
        )
        return
    if pub.all_tables:
        return
    absent = sorted(set(_published(spec)) - pub.tables)
    if absent:
        yield (
            f"{origin}: publication {spec.names.publication} does not publish {', '.join(absent)}; their "
            f"changes would never stream. As the tables' owner: "
            f"ALTER PUBLICATION {spec.names.publication} SET TABLE {listed};"
        )


def _check_slot(spec: SourceSpec, facts: DatabaseFacts, origin: str, infos: list[str]) -> Iterable[str]:
    slot = facts.slots.get(spec.names.slot)
    if slot is None:
        return
    if slot.database != spec.database.dbname:
        yield (
            f"{origin}: name: replication slot {spec.names.slot} already exists for database {slot.database} "
            f"(another source owns it); choose another name, or drop it if it is abandoned: "
            f"SELECT pg_drop_replication_slot('{spec.names.slot}');"
        )
    elif slot.plugin != "pgoutput":
        yield (
            f"{origin}: name: replication slot {spec.names.slot} uses plugin {slot.plugin}, not pgoutput; "
            f"drop it: SELECT pg_drop_replication_slot('{spec.names.slot}');"
        )
    else:
        infos.append(
            f"replication slot {spec.names.slot} already exists{' and is active' if slot.active else ''}: "
            f"the connector resumes from it"
        )


def check_cluster(spec: SourceSpec, cluster: ClusterFacts, origin: str) -> Report:
    """Clashes with other connectors and with topics under this source's prefix."""
    report = Report()
    db = spec.database
    for name, config in sorted(cluster.connector_configs.items()):
        if name == spec.names.connector:
            same_db = (
                config.get("database.hostname") == db.host
                and config.get("database.port", "5432") == str(db.port)
                and config.get("database.dbname") == db.dbname
            )
            if not same_db:
                report.problems.append(
                    f"{origin}: name: connector {name} already exists for database "
                    f"{config.get('database.hostname')}:{config.get('database.port')}/"
                    f"{config.get('database.dbname')}; another source uses the name {spec.name!r}; choose "
                    f"another name"
                )
            else:
                report.infos.append(f"connector {name} exists for this database: `add` updates it in place")
            continue
        if config.get("topic.prefix") == spec.names.topic_prefix:
            report.problems.append(
                f"{origin}: name: connector {name} already writes topics with prefix "
                f"{spec.names.topic_prefix!r}; choose another name"
            )
        if config.get("slot.name") == spec.names.slot and config.get("database.hostname") == db.host:
            report.problems.append(
                f"{origin}: name: connector {name} already uses replication slot {spec.names.slot}; choose "
                f"another name"
            )
        if (
            config.get("publication.name") == spec.names.publication
            and config.get("database.dbname") == db.dbname
            and config.get("database.hostname") == db.host
        ):
            report.problems.append(
                f"{origin}: name: connector {name} already uses publication {spec.names.publication}; choose "
                f"another name"
            )
    if spec.names.connector not in cluster.connector_configs:
        existing = sorted(t for t in cluster.topics if t.startswith(f"{spec.names.topic_prefix}."))
        if existing:
            report.infos.append(
                f"topics {', '.join(existing[:5])}{' ...' if len(existing) > 5 else ''} exist without a "
                f"connector (an earlier onboarding of {spec.name!r}?): the new snapshot is appended and the "
                f"replicator applies it idempotently"
            )
    return report


def _login_problem(spec: SourceSpec, settings: Settings, origin: str, error: psycopg.Error) -> str:
    """Why the CDC user cannot connect, using the superuser only for what that user cannot see."""
    reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
    user = spec.database.user
    base = (
        f"{origin}: database: cannot connect to {spec.database.host}:{spec.database.port}/"
        f"{spec.database.dbname} as {user}: {reason}"
    )
    try:
        with psycopg.connect(settings.postgres.dsn(), connect_timeout=5, autocommit=True) as admin:
            row = admin.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", (user,)).fetchone()
    except psycopg.Error:
        return base + "; check the host/port and the password source, then re-run validate"
    log.info("validate.superuser_check", source=spec.name, check="role exists / can login")
    if row is None:
        return f"{base}. (superuser check) role {user} does not exist: run `scv sources grant-sql {origin}`"
    if not row[0]:
        return f"{base}. (superuser check) role {user} cannot log in: ALTER ROLE {user} WITH LOGIN;"
    return f"{base}. The role exists: check the password in database.password_env/password_file"


def _cluster_facts(settings: Settings) -> ClusterFacts:
    from connectors.connect import ConnectClient
    from scv.kafka.admin import KafkaAdmin

    with ConnectClient(settings.connect.url) as connect:
        configs = {name: connect.get_config(name) or {} for name in connect.connectors()}
    with KafkaAdmin(settings.kafka.bootstrap_servers) as kafka:
        topics = frozenset(kafka.list_topics())
    return ClusterFacts(connector_configs=configs, topics=topics)


def validate_source(spec: SourceSpec, settings: Settings, origin: str = "<spec>") -> Report:
    """Gather the facts (database as the CDC user, Connect, Kafka) and apply every rule."""
    report = Report()
    try:
        with connect_source(spec) as conn:
            facts = read_facts(conn, spec)
    except SpecError as exc:
        report.problems.append(f"{origin}: database: {exc}")
    except psycopg.OperationalError as exc:
        report.problems.append(_login_problem(spec, settings, origin, exc))
    else:
        db_report = check_database(spec, facts, origin)
        report.problems.extend(db_report.problems)
        report.infos.extend(db_report.infos)
        report.choices = db_report.choices
    cluster_report = check_cluster(spec, _cluster_facts(settings), origin)
    report.problems.extend(cluster_report.problems)
    report.infos.extend(cluster_report.infos)
    if any(t.via is not None and t.via.source not in (None, spec.name) for t in spec.tables.values()):
        from connectors.mapping import via_problems
        from connectors.registered import registered_mappings

        try:
            report.problems.extend(via_problems(spec, registered_mappings(settings.store), origin))
        except SourceError as exc:
            report.problems.append(f"{origin}: a via into another source needs its registration: {exc}")
    log.info("sources.validated", source=spec.name, problems=len(report.problems), infos=len(report.infos))
    return report

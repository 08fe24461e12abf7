"""Onboarding lifecycle against the real stack: add, pause/resume, resnapshot, status, remove.

Each test module creates its own database, CDC role and source name, so tests never collide.
"""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import psycopg
import pytest

from connectors.connect import ConnectClient
from connectors.grants import apply_grants_locally
from connectors.mapping import mapping_from_spec
from connectors.onboard import add_source, remove_source
from connectors.operate import pause_source, resnapshot_source, resume_source, source_status
from connectors.spec import SourceSpec, parse_spec
from scv.config.settings import Settings
from tests.integration.conftest import wait_for
from tests.integration.support import AvroTopicReader

pytestmark = pytest.mark.integration
T = TypeVar("T")

LOYALTY_SQL = """
CREATE TABLE members (
    member_id   bigint PRIMARY KEY,
    customer_id bigint NOT NULL,
    tier        text NOT NULL,
    nickname    text
);
CREATE TABLE rewards (
    reward_id bigint PRIMARY KEY,
    member_id bigint NOT NULL REFERENCES members,
    points    integer NOT NULL
);
INSERT INTO members SELECT g, 1000 + g, 'gold', NULL FROM generate_series(1, 20) g;
INSERT INTO rewards SELECT g, 1 + g % 20, g * 10 FROM generate_series(1, 30) g;
"""

LOYALTY_TABLES = """
  public.members: {kind: member, customer_key: customer_id}
  public.rewards: {kind: reward, customer_key: {via: public.members, column: member_id}}
"""


@dataclass
class LiveSource:
    """A database created by a test with a least-privilege CDC role; ``spec`` describes it."""

    name: str
    settings: Settings
    spec: SourceSpec

    def sql(self, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.settings.postgres.dsn(self.name), autocommit=True) as conn:
            cursor = conn.execute(statement, params)
            return cursor.fetchall() if cursor.description else []

    def admin(self, statement: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.settings.postgres.dsn("postgres"), autocommit=True) as conn:
            cursor = conn.execute(statement)
            return cursor.fetchall() if cursor.description else []


def spec_text(
    name: str, settings: Settings, tables_yaml: str, extra: str = "", user: str | None = None
) -> str:
    return (
        f"name: {name}\n"
        f"database: {{host: 127.0.0.1, port: {settings.postgres.port}, dbname: {name}, "
        f"user: {user or 'cdc_' + name}, password_env: SCV_TEST_{name.upper()}_PW}}\n"
        f"heartbeat_interval_ms: 1000\n{extra}"
        f"tables:\n{tables_yaml}"
    )


def create_source(
    settings: Settings,
    prefix: str,
    schema_sql: str,
    tables_yaml: str,
    *,
    grants: bool = True,
    extra: str = "",
) -> LiveSource:
    """Create database + role ``cdc_<name>`` (password only in this process's environment); with
    ``grants`` run the grant-sql output as the DBA would (tables stay owned by postgres)."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    os.environ[f"SCV_TEST_{name.upper()}_PW"] = secrets.token_urlsafe(16)
    source = LiveSource(name, settings, parse_spec(spec_text(name, settings, tables_yaml, extra), name))
    source.admin(f'CREATE DATABASE "{name}"')
    source.admin(f"CREATE ROLE cdc_{name} LOGIN")
    source.sql(schema_sql)
    if grants:
        apply_grants_locally(source.spec, settings)
    return source


def drop_source(source: LiveSource) -> None:
    remove_source(source.name, source.settings)
    source.admin(f'DROP DATABASE IF EXISTS "{source.name}" WITH (FORCE)')
    source.admin(f"DROP ROLE IF EXISTS cdc_{source.name}")


# --- reading the topics: Confluent wire format resolved through the ccompat API -------------------


def ids_with(values: list[dict[str, Any]], key: str, op: str, snapshot: str | None = None) -> set[Any]:
    out = set()
    for value in values:
        if value.get("op") != op:
            continue
        if snapshot is not None and (value.get("source") or {}).get("snapshot") != snapshot:
            continue
        out.add((value.get("after") or {}).get(key))
    return out


@pytest.fixture(scope="session")
def migrated(stack: Settings) -> Settings:
    """The store's schema exists (idempotent), so `add` can write its registration."""
    from store.migrate import migrate
    from store.session import open_session

    with open_session(stack.store) as session:
        migrate(session, stack.store.keyspace, stack.store.replication_factor, stack.store.local_dc)
    return stack


@pytest.fixture(scope="module")
def loyalty(migrated: Settings) -> Iterator[LiveSource]:
    stack = migrated
    source = create_source(stack, "loyalty", LOYALTY_SQL, LOYALTY_TABLES)
    add_source(source.spec, stack, timeout_s=240)
    yield source
    drop_source(source)


@pytest.fixture(scope="module")
def reader(stack: Settings) -> AvroTopicReader:
    return AvroTopicReader(stack)


def test_add_connector_and_task_running(loyalty: LiveSource, stack: Settings) -> None:
    with ConnectClient(stack.connect.url) as connect:
        status = connect.status(loyalty.spec.names.connector)
    assert status is not None
    assert status.running, status


def test_add_snapshot_records_are_avro_on_the_topics(loyalty: LiveSource, reader: AvroTopicReader) -> None:
    members = reader.values(loyalty.spec.names.topic("public.members"))
    rewards = reader.values(loyalty.spec.names.topic("public.rewards"))
    assert ids_with(members, "member_id", "r") == set(range(1, 21))
    assert ids_with(rewards, "reward_id", "r") == set(range(1, 31))


def test_add_password_absent_from_connect_config(loyalty: LiveSource, stack: Settings) -> None:
    password = os.environ[f"SCV_TEST_{loyalty.name.upper()}_PW"]
    response = httpx.get(f"{stack.connect.url}/connectors/{loyalty.spec.names.connector}/config", timeout=10)
    response.raise_for_status()
    assert password not in response.text
    path = stack.connect.secret_file(loyalty.spec.names.secret_file)
    assert response.json()["database.password"] == f"${{file:{path}:password}}"
    assert path.stat().st_mode & 0o777 == 0o600


def test_add_registers_the_mapping_in_the_store(loyalty: LiveSource, stack: Settings) -> None:
    from store.registrations import RegistrationStore
    from store.session import open_session

    with open_session(stack.store) as session:
        registrations = {r.name: r for r in RegistrationStore(session, stack.store.keyspace).all()}
    assert registrations[loyalty.name].mapping_json == mapping_from_spec(loyalty.spec).to_json()


def test_add_again_is_idempotent(loyalty: LiveSource, stack: Settings) -> None:
    add_source(loyalty.spec, stack, timeout_s=120)
    with ConnectClient(stack.connect.url) as connect:
        status = connect.status(loyalty.spec.names.connector)
    assert status is not None
    assert status.running


def test_add_sets_backward_compatibility_on_subjects(loyalty: LiveSource, stack: Settings) -> None:
    subject = f"{loyalty.spec.names.topic('public.members')}-value"
    response = httpx.get(f"{stack.registry.url}/config/{subject}", timeout=10)
    response.raise_for_status()
    assert "BACKWARD" in response.text


def test_pause_resume_changes_made_while_paused_arrive(
    loyalty: LiveSource, stack: Settings, reader: AvroTopicReader
) -> None:
    connector = loyalty.spec.names.connector
    pause_source(loyalty.name, stack)
    with ConnectClient(stack.connect.url) as connect:
        wait_for(lambda: (s := connect.status(connector)) is not None and s.state == "PAUSED", what="PAUSED")
    loyalty.sql("INSERT INTO members SELECT g, 1000 + g, 'silver', 'paused' FROM generate_series(101, 105) g")
    loyalty.sql("UPDATE members SET tier = 'platinum' WHERE member_id = 1")
    topic = loyalty.spec.names.topic("public.members")
    resume_source(loyalty.name, stack)
    wait_for(
        lambda: {101, 102, 103, 104, 105} <= ids_with(reader.values(topic), "member_id", "c"),
        what="inserts made while paused",
    )
    wait_for(
        lambda: any(
            v.get("op") == "u" and (v.get("after") or {}).get("tier") == "platinum"
            for v in reader.values(topic)
        ),
        what="update made while paused",
    )


def test_resnapshot_reemits_rows_as_incremental_reads(
    loyalty: LiveSource, stack: Settings, reader: AvroTopicReader
) -> None:
    resnapshot_source(loyalty.name, stack, ["public.rewards"])
    topic = loyalty.spec.names.topic("public.rewards")
    wait_for(
        lambda: set(range(1, 31)) <= ids_with(reader.values(topic), "reward_id", "r", snapshot="incremental"),
        what="incremental snapshot records of public.rewards",
    )


def test_status_reports_running_lag_and_last_event(loyalty: LiveSource, stack: Settings) -> None:
    status = wait_for(
        lambda: (s := source_status(loyalty.name, stack)).last_heartbeat_at and s, what="a heartbeat"
    )
    assert status.connector.running
    assert status.slot_active is True
    assert status.slot_lag_bytes is not None
    assert status.slot_lag_bytes >= 0
    assert status.last_event_at is not None
    assert status.tables == ("public.members", "public.rewards")


def test_remove_leaves_no_connector_slot_publication_or_registration(migrated: Settings) -> None:
    stack = migrated
    source = create_source(stack, "gone", LOYALTY_SQL, LOYALTY_TABLES)
    try:
        add_source(source.spec, stack, timeout_s=240)
        remove_source(source.name, stack)
        assert source.admin(f"SELECT 1 FROM pg_replication_slots WHERE slot_name = 'scv_{source.name}'") == []
        assert source.sql(f"SELECT 1 FROM pg_publication WHERE pubname = 'scv_{source.name}'") == []
        with ConnectClient(stack.connect.url) as connect:
            assert connect.get_config(source.spec.names.connector) is None
        assert not stack.connect.secret_file(source.spec.names.secret_file).exists()
        from store.registrations import RegistrationStore
        from store.session import open_session

        with open_session(stack.store) as session:
            names = {r.name for r in RegistrationStore(session, stack.store.keyspace).all()}
        assert source.name not in names
    finally:
        drop_source(source)

"""Every validation failure path against the real PostgreSQL, with the message that names the fix.

(wal_level, free slots and WAL senders need a server restart to change, so they are covered with a fake of
the facts layer in tests/unit/test_sources_validate.py.)
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import psycopg
import pytest

from connectors.spec import SourceSpec, parse_spec
from connectors.validate import validate_source
from scv.config.settings import Settings
from tests.integration.test_sources_lifecycle import LiveSource, create_source, drop_source, spec_text

pytestmark = pytest.mark.integration

BROKEN_SQL = """
CREATE TABLE members (member_id bigint PRIMARY KEY, customer_id bigint, email text, age int NOT NULL);
CREATE TABLE keyless (customer_id bigint NOT NULL, note text);
CREATE TABLE silent (id bigint PRIMARY KEY, customer_id bigint NOT NULL);
ALTER TABLE silent REPLICA IDENTITY NOTHING;
CREATE TABLE pairs (a bigint, b bigint, customer_id bigint NOT NULL, PRIMARY KEY (a, b));
CREATE TABLE pair_items (id bigint PRIMARY KEY, a bigint NOT NULL);
CREATE TABLE hidden (id bigint PRIMARY KEY, customer_id bigint NOT NULL);
"""

GOOD_TABLE = "  public.members: {kind: member, customer_key: customer_id, null_customer_key: skip}\n"


@pytest.fixture(scope="module")
def broken(stack: Settings) -> Iterator[LiveSource]:
    source = create_source(stack, "broken", BROKEN_SQL, GOOD_TABLE)
    # Taken back after grant-sql so exactly this one privilege is missing.
    source.sql(f"REVOKE SELECT ON hidden FROM cdc_{source.name}")
    yield source
    drop_source(source)


def variant(source: LiveSource, tables_yaml: str, extra: str = "", user: str | None = None) -> SourceSpec:
    return parse_spec(
        spec_text(source.name, source.settings, tables_yaml, extra, user), f"{source.name}.yaml"
    )


def problems_of(spec: SourceSpec, settings: Settings) -> list[str]:
    return validate_source(spec, settings, f"{spec.name}.yaml").problems


def one(problems: list[str], needle: str) -> str:
    found = [p for p in problems if needle in p]
    assert len(found) == 1, "\n".join(problems)
    return found[0]


def test_validate_good_spec_passes_with_replica_identity_info(broken: LiveSource, stack: Settings) -> None:
    report = validate_source(broken.spec, stack, "good.yaml")
    assert report.problems == []
    assert any("REPLICA IDENTITY DEFAULT" in i for i in report.infos)


def test_validate_missing_table(broken: LiveSource, stack: Settings) -> None:
    spec = variant(broken, GOOD_TABLE + "  public.nosuch: {kind: x, customer_key: customer_id}\n")
    assert "fix the table name" in one(
        problems_of(spec, stack), "tables.public.nosuch: table public.nosuch does not exist"
    )


def test_validate_table_without_primary_key(broken: LiveSource, stack: Settings) -> None:
    spec = variant(broken, GOOD_TABLE + "  public.keyless: {kind: x, customer_key: customer_id}\n")
    assert "ALTER TABLE public.keyless ADD PRIMARY KEY" in one(problems_of(spec, stack), "no primary key")


def test_validate_replica_identity_nothing_refused(broken: LiveSource, stack: Settings) -> None:
    spec = variant(broken, GOOD_TABLE + "  public.silent: {kind: x, customer_key: customer_id}\n")
    assert "ALTER TABLE public.silent REPLICA IDENTITY DEFAULT;" in one(problems_of(spec, stack), "NOTHING")


def test_validate_nullable_customer_key_needs_null_policy(broken: LiveSource, stack: Settings) -> None:
    spec = variant(broken, "  public.members: {kind: member, customer_key: customer_id}\n")
    problem = one(problems_of(spec, stack), "null_customer_key")
    assert "tables.public.members.null_customer_key" in problem
    assert "ALTER TABLE public.members ALTER COLUMN customer_id SET NOT NULL;" in problem


def test_validate_unknown_columns_named_per_key(broken: LiveSource, stack: Settings) -> None:
    spec = variant(
        broken,
        "  public.members: {kind: member, customer_key: customer_id, null_customer_key: skip, "
        "entity_id: [nope], hash_columns: [mail], exclude_columns: [gone]}\n",
    )
    problems = problems_of(spec, stack)
    assert "column 'nope' does not exist" in one(problems, "tables.public.members.entity_id")
    assert "column 'mail' does not exist" in one(problems, "tables.public.members.hash_columns")
    assert "column 'gone' does not exist" in one(problems, "tables.public.members.exclude_columns")


def test_validate_hash_of_non_string_column(broken: LiveSource, stack: Settings) -> None:
    spec = variant(
        broken,
        "  public.members: {kind: member, customer_key: customer_id, null_customer_key: skip, "
        "mask_columns: [age]}\n",
    )
    assert "string columns only" in one(problems_of(spec, stack), "mask_columns")


def test_validate_via_target_must_have_single_column_key(broken: LiveSource, stack: Settings) -> None:
    spec = variant(
        broken,
        GOOD_TABLE
        + "  public.pairs: {kind: pair, customer_key: customer_id}\n"
        + "  public.pair_items: {kind: item, customer_key: {via: public.pairs, column: a}}\n",
    )
    assert "single-column primary key" in one(problems_of(spec, stack), "customer_key.via")


def test_validate_missing_select_privilege(broken: LiveSource, stack: Settings) -> None:
    spec = variant(broken, GOOD_TABLE + "  public.hidden: {kind: x, customer_key: customer_id}\n")
    problem = one(problems_of(spec, stack), "cannot read public.hidden")
    assert f"GRANT SELECT ON public.hidden TO cdc_{broken.name};" in problem


def test_validate_publication_missing_a_table(broken: LiveSource, stack: Settings) -> None:
    # members_2 is readable but was never added to the DBA's publication.
    broken.sql("CREATE TABLE IF NOT EXISTS members_2 (id bigint PRIMARY KEY, customer_id bigint NOT NULL)")
    broken.sql(f"GRANT SELECT ON members_2 TO cdc_{broken.name}")
    spec = variant(broken, GOOD_TABLE + "  public.members_2: {kind: x, customer_key: customer_id}\n")
    problem = one(problems_of(spec, stack), "does not publish public.members_2")
    assert f"ALTER PUBLICATION scv_{broken.name} SET TABLE" in problem


def test_validate_missing_signal_table(broken: LiveSource, stack: Settings) -> None:
    spec = variant(broken, GOOD_TABLE, extra="signal_table: public.no_signal\n")
    assert "grant-sql" in one(problems_of(spec, stack), "signal_table: public.no_signal does not exist")


def test_validate_role_without_replication(broken: LiveSource, stack: Settings) -> None:
    role = f"norepl_{broken.name}"
    password = os.environ[f"SCV_TEST_{broken.name.upper()}_PW"]
    broken.admin(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
    try:
        broken.sql(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
        spec = variant(broken, GOOD_TABLE, user=role)
        assert f"ALTER ROLE {role} WITH REPLICATION;" in one(problems_of(spec, stack), "lacks REPLICATION")
    finally:
        broken.sql(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}")
        broken.admin(f"DROP ROLE {role}")


def test_validate_unknown_role_is_explained_by_superuser_check(broken: LiveSource, stack: Settings) -> None:
    spec = variant(broken, GOOD_TABLE, user="nobody_here")
    problem = one(problems_of(spec, stack), "cannot connect")
    assert "(superuser check) role nobody_here does not exist" in problem
    assert "grant-sql" in problem


def test_validate_wrong_password_names_the_password_source(
    broken: LiveSource, stack: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(f"SCV_TEST_{broken.name.upper()}_PW", "wrong-password")
    problem = one(problems_of(broken.spec, stack), "cannot connect")
    assert "check the password" in problem
    assert "wrong-password" not in problem


def test_validate_unset_password_env_is_reported(
    broken: LiveSource, stack: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(f"SCV_TEST_{broken.name.upper()}_PW")
    assert "export it" in one(problems_of(broken.spec, stack), "is not set")


def test_validate_slot_owned_by_another_database_is_a_clash(broken: LiveSource, stack: Settings) -> None:
    slot = f"scv_{broken.name}"
    with psycopg.connect(stack.postgres.dsn("postgres"), autocommit=True) as conn:
        conn.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (slot,))
    try:
        problem = one(problems_of(broken.spec, stack), "already exists for database postgres")
        assert f"pg_drop_replication_slot('{slot}')" in problem
    finally:
        with psycopg.connect(stack.postgres.dsn("postgres"), autocommit=True) as conn:
            conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))

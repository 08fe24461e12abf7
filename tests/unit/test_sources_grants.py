"""grant-sql: least privilege, every object Debezium needs, a placeholder instead of a password."""

from __future__ import annotations

import pytest

from connectors.grants import PASSWORD_PLACEHOLDER, grant_sql
from connectors.spec import SourceSpec, parse_spec

SPEC = """
name: loyalty
database: {host: 127.0.0.1, dbname: loyalty, user: cdc_loyalty, password_env: LOYALTY_PW}
tables:
  public.members: {kind: member, customer_key: customer_id}
  public.rewards: {kind: reward, customer_key: {via: public.members, column: member_id}}
"""


@pytest.fixture
def spec() -> SourceSpec:
    return parse_spec(SPEC, "loyalty.yaml")


def test_grant_sql_creates_login_replication_role_with_placeholder(spec: SourceSpec) -> None:
    text = grant_sql(spec)
    assert 'CREATE ROLE "cdc_loyalty" WITH LOGIN REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE' in text
    assert f"PASSWORD '{PASSWORD_PLACEHOLDER}'" in text


def test_grant_sql_grants_only_what_debezium_needs(spec: SourceSpec) -> None:
    text = grant_sql(spec)
    assert 'GRANT CONNECT ON DATABASE "loyalty" TO "cdc_loyalty";' in text
    assert 'GRANT USAGE ON SCHEMA "public" TO "cdc_loyalty";' in text
    assert 'GRANT SELECT ON "public"."members", "public"."rewards" TO "cdc_loyalty";' in text
    assert 'GRANT SELECT, INSERT, UPDATE, DELETE ON "public"."scv_signal" TO "cdc_loyalty";' in text
    assert 'GRANT SELECT, INSERT, UPDATE ON "public"."scv_heartbeat" TO "cdc_loyalty";' in text
    assert "ALL TABLES" not in text
    assert "SUPERUSER" not in text.replace("NOSUPERUSER", "")


def test_grant_sql_creates_signal_and_heartbeat_tables(spec: SourceSpec) -> None:
    text = grant_sql(spec)
    assert 'CREATE TABLE IF NOT EXISTS "public"."scv_signal" (' in text
    assert "id varchar(42) PRIMARY KEY" in text
    assert 'CREATE TABLE IF NOT EXISTS "public"."scv_heartbeat" (' in text
    assert "source text PRIMARY KEY" in text


def test_grant_sql_creates_the_publication_for_captured_tables(spec: SourceSpec) -> None:
    text = grant_sql(spec)
    tables = '"public"."members", "public"."rewards", "public"."scv_signal", "public"."scv_heartbeat"'
    assert f'CREATE PUBLICATION "scv_loyalty" FOR TABLE {tables};' in text
    assert f'ALTER PUBLICATION "scv_loyalty" SET TABLE {tables};' in text


def test_grant_sql_is_one_transaction(spec: SourceSpec) -> None:
    lines = [line for line in grant_sql(spec).splitlines() if line and not line.startswith("--")]
    assert lines[0] == "BEGIN;"
    assert lines[-1] == "COMMIT;"


HOSTILE = """
name: loyalty
database: {host: 127.0.0.1, dbname: 'it''s db', user: 'cdc"; DROP ROLE x; --$scv$', password_env: P}
tables:
  public.members: {kind: member, customer_key: customer_id}
"""


def test_grant_sql_quotes_every_identifier_and_literal_so_no_name_ends_a_statement() -> None:
    text = grant_sql(parse_spec(HOSTILE, "hostile.yaml"))
    assert """GRANT CONNECT ON DATABASE "it's db" TO "cdc""; DROP ROLE x; --$scv$";""" in text
    # The role name inside the DO block is a literal, and the dollar-quote tag is not in the body.
    assert """rolname = 'cdc"; DROP ROLE x; --$scv$'""" in text
    assert "DO $scv1$ BEGIN" in text
    assert "END $scv1$;" in text
    # The database name in the psql hint is shell-quoted.
    assert """psql -d 'it'"'"'s db'""" in text


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("dbname", '"two\\nlines"', "control character"),
        ("user", "u" * 64, "at most 63 bytes"),
        ("dbname", "''", "must not be empty"),
    ],
)
def test_spec_refuses_a_name_it_cannot_quote_safely_naming_the_field(
    field: str, value: str, message: str
) -> None:
    from connectors.exceptions import SpecError

    database = {"dbname": "ok", "user": "cdc", field: value}
    text = (
        "name: loyalty\n"
        f"database: {{host: h, dbname: {database['dbname']}, user: {database['user']}, password_env: P}}\n"
        "tables:\n  public.members: {kind: member, customer_key: customer_id}\n"
    )
    with pytest.raises(SpecError, match=rf"bad\.yaml:2: database\.{field}: .*{message}"):
        parse_spec(text, "bad.yaml")

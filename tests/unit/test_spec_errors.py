"""Spec errors name the file, the line, the key and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.exceptions import SpecError
from connectors.spec import parse_spec

GOOD = """name: loyalty
database:
  host: 127.0.0.1
  dbname: loyalty
  user: cdc_loyalty
  password_env: LOYALTY_PW
tables:
  public.members:
    kind: member
    customer_key: customer_id
"""


def _error(text: str) -> str:
    with pytest.raises(SpecError) as info:
        parse_spec(text, "loyalty.yaml")
    return str(info.value)


def test_spec_good_parses() -> None:
    spec = parse_spec(GOOD, "loyalty.yaml")
    assert spec.names.connector == "scv-loyalty"
    assert spec.publication_autocreate == "auto"
    assert spec.heartbeat_table == "public.scv_heartbeat"


def test_spec_bad_name_reports_line_1() -> None:
    message = _error(GOOD.replace("name: loyalty", "name: Loyalty-DB"))
    assert "loyalty.yaml:1: name:" in message
    assert "lower_snake_case" in message


def test_spec_inline_password_is_refused_with_its_line() -> None:
    message = _error(GOOD.replace("  password_env: LOYALTY_PW\n", "  password: hunter2\n"))
    assert "loyalty.yaml:6: database.password:" in message


def test_spec_missing_password_source_names_database() -> None:
    message = _error(GOOD.replace("  password_env: LOYALTY_PW\n", ""))
    assert "loyalty.yaml:2: database:" in message
    assert "password_env" in message


def test_spec_unknown_kind_format_reports_table_line() -> None:
    message = _error(GOOD.replace("kind: member", "kind: Member Card"))
    assert "loyalty.yaml:9: tables.public.members.kind:" in message


def test_spec_via_to_unknown_table_is_refused() -> None:
    text = (
        GOOD
        + "  public.rewards:\n    kind: reward\n"
        + "    customer_key: {via: public.accounts, column: account_id}\n"
    )
    message = _error(text)
    assert "public.accounts" in message
    assert "not a table of this source" in message


def test_spec_include_and_exclude_together_refused_at_table_line() -> None:
    text = GOOD + "    include_columns: [a]\n    exclude_columns: [b]\n"
    message = _error(text)
    assert "loyalty.yaml:8: tables.public.members:" in message
    assert "not both" in message


def test_spec_bad_signal_table_reports_its_line() -> None:
    message = _error(GOOD + "signal_table: scv_signal\n")
    assert "loyalty.yaml:11: signal_table:" in message


def test_spec_bad_publication_mode_is_refused() -> None:
    message = _error(GOOD + "publication_autocreate: all_tables\n")
    assert "loyalty.yaml:11: publication_autocreate:" in message


def test_spec_invalid_yaml_reports_line() -> None:
    message = _error("name: loyalty\ntables: [\n")
    assert message.startswith("loyalty.yaml:")
    assert "not valid YAML" in message


def test_spec_with_a_python_tag_is_refused_with_its_line_not_a_traceback() -> None:
    message = _error(GOOD.replace("  host: 127.0.0.1", "  host: !!python/object/apply:os.system ['id']"))
    assert message.startswith("loyalty.yaml:3: not a plain YAML value")
    assert "python/object/apply:os.system" in message


def test_spec_with_a_duplicate_key_is_refused_naming_both_lines() -> None:
    message = _error(GOOD.replace("  user: cdc_loyalty\n", "  user: cdc_loyalty\n  user: someone_else\n"))
    assert "loyalty.yaml:6: duplicate key 'user' (first at line 5)" in message


def test_spec_with_a_duplicate_table_is_refused_rather_than_dropping_one() -> None:
    text = GOOD + "  public.members:\n    kind: other\n    customer_key: customer_id\n"
    assert "duplicate key 'public.members' (first at line 8)" in _error(text)


def test_spec_that_is_not_a_mapping_is_refused() -> None:
    assert _error("- name: loyalty\n") == "loyalty.yaml:1: expected a mapping with name, database and tables"


def test_spec_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    from connectors.spec import load_spec

    path = tmp_path / "latin1.yaml"
    path.write_bytes(GOOD.replace("loyalty", "lo\xefalty").encode("latin-1"))
    with pytest.raises(SpecError, match="not UTF-8 text"):
        load_spec(path)

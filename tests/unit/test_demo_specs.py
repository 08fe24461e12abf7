"""The demo's source specs agree with the demo's schema, roles and password variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.spec import ViaKey, load_spec
from demo.model import DATABASES, TABLES, published_tables
from demo.secrets import CDC_ROLES, PASSWORD_ENV

SPECS = Path(__file__).resolve().parents[2] / "connectors" / "sources"


@pytest.mark.parametrize("source", DATABASES)
def test_spec_lists_every_demo_table(source: str) -> None:
    spec = load_spec(SPECS / f"{source}.yaml")
    assert set(spec.tables) == {f"public.{t.name}" for t in TABLES[source] if t.captured}
    assert set(published_tables(source)) >= {*spec.tables, spec.signal_table, spec.heartbeat_table}


@pytest.mark.parametrize("source", DATABASES)
def test_spec_connects_as_the_demo_cdc_role_with_the_exported_variable(source: str) -> None:
    spec = load_spec(SPECS / f"{source}.yaml")
    assert spec.name == source
    assert spec.database.dbname == source
    assert spec.database.user == CDC_ROLES[source]
    assert spec.database.password_env == PASSWORD_ENV[CDC_ROLES[source]]
    assert (spec.database.host, spec.database.port) == ("127.0.0.1", 5432)


def test_core_reaches_customers_through_accounts_and_orders() -> None:
    spec = load_spec(SPECS / "core.yaml")
    assert spec.tables["public.cards"].customer_key == ViaKey(via="public.accounts", column="account_id")
    assert spec.tables["public.securities_positions"].customer_key == ViaKey(
        via="public.accounts", column="account_id"
    )
    assert spec.tables["public.order_returns"].customer_key == ViaKey(via="public.orders", column="order_id")
    assert spec.tables["public.securities_positions"].kind == "security_position"

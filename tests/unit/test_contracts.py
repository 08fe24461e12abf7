"""The ground-floor contracts: names derived from a source's name, the registration mapping's shape."""

from __future__ import annotations

import pytest

from scv.contracts.naming import SourceNames
from scv.contracts.registration import RegistrationError, SourceMapping, TableMapping


def test_every_name_derives_from_the_source_name() -> None:
    names = SourceNames("crm")
    assert names.connector == "scv-crm"
    assert names.slot == "scv_crm"
    assert names.publication == "scv_crm"
    assert names.topic_prefix == "crm"
    assert names.topic("public.customers") == "crm.public.customers"
    assert names.subject("public.customers", "value") == "crm.public.customers-value"
    assert names.heartbeat_topic == "__debezium-heartbeat.crm"
    assert names.secret_file == "crm.properties"


@pytest.mark.parametrize("bad", ["", "Crm", "1crm", "crm-prod", "crm;drop", "a" * 42])
def test_names_refuse_what_cannot_be_a_slot_or_topic_prefix(bad: str) -> None:
    with pytest.raises(ValueError, match="not a source name"):
        SourceNames(bad)


def test_connector_and_slot_lead_back_to_the_source() -> None:
    assert SourceNames.of_connector("scv-crm") == SourceNames("crm")
    assert SourceNames.of_connector("someone-elses") is None
    assert SourceNames.of_slot("scv_core") == SourceNames("core")
    assert SourceNames.of_slot("debezium") is None


def test_source_owns_its_topics_and_heartbeat_only() -> None:
    names = SourceNames("crm")
    assert names.owns_topic("crm.public.customers")
    assert names.owns_topic("__debezium-heartbeat.crm")
    assert not names.owns_topic("crmx.public.customers")
    assert not names.owns_topic("__debezium-heartbeat.crmx")


MAPPING = SourceMapping.build(
    "core",
    "core",
    [
        TableMapping("core", "public.accounts", "account", customer_key="customer_id"),
        TableMapping("core", "public.cards", "card", via_table="public.accounts", via_column="account_id"),
        TableMapping("core", "public.limits", "limit", via_table="public.accounts", via_column="account_id"),
    ],
)


def test_children_are_derived_when_the_mapping_is_built() -> None:
    assert MAPPING.tables["public.accounts"].children == ("public.cards", "public.limits")
    assert MAPPING.tables["public.cards"].children == ()


def test_registration_round_trips_through_json_with_the_same_derivation() -> None:
    again = SourceMapping.from_json(MAPPING.to_json())
    assert again == MAPPING
    assert again.tables["public.accounts"].children == ("public.cards", "public.limits")


def test_json_carries_only_what_was_declared() -> None:
    assert "children" not in MAPPING.to_json()


def test_placing_columns_are_the_key_and_entity_id_columns() -> None:
    table = TableMapping("crm", "public.x", "x", customer_key="cid", entity_id=("a", "b"))
    assert table.placing_columns == frozenset({"cid", "a", "b"})
    assert MAPPING.tables["public.cards"].placing_columns == frozenset({"account_id"})


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        '{"tables": {}}',
        '{"name": "x", "tables": {"public.t": {}}}',
        '{"name": "x", "tables": {"public.t": {"kind": "k", "null_customer_key": "drop"}}}',
    ],
)
def test_malformed_registration_is_refused_by_name(text: str) -> None:
    with pytest.raises(RegistrationError, match="not a source registration"):
        SourceMapping.from_json(text)

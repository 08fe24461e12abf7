"""Predicting the schema Debezium registers after a DDL change, from the contract and the live table."""

from __future__ import annotations

from typing import Any

from connectors.avro_types import avro_type_for, same_type
from connectors.database import ColumnFacts, TableFacts
from connectors.schemas import predict_value_schema


def _contract() -> dict[str, Any]:
    row = {
        "type": "record",
        "name": "Value",
        "namespace": "loyalty.public.members",
        "fields": [
            {"name": "member_id", "type": "long"},
            {"name": "tier", "type": "string"},
            {"name": "nickname", "type": ["null", "string"], "default": None},
        ],
    }
    return {
        "type": "record",
        "name": "Envelope",
        "namespace": "loyalty.public.members",
        "fields": [
            {"name": "before", "type": ["null", row], "default": None},
            {"name": "after", "type": ["null", "Value"], "default": None},
        ],
    }


def _table(*columns: ColumnFacts) -> TableFacts:
    return TableFacts("public.members", True, {c.name: c for c in columns}, ("member_id",))


def test_predict_unchanged_table_has_no_changes() -> None:
    facts = _table(
        ColumnFacts("member_id", "bigint", True, False),
        ColumnFacts("tier", "text", True, False),
        ColumnFacts("nickname", "character varying(40)", False, False),
    )
    predicted, changes = predict_value_schema(_contract(), facts)
    assert changes == []
    assert predicted == _contract()


def test_predict_detects_drop_type_change_not_null_and_addition() -> None:
    facts = _table(
        ColumnFacts("member_id", "integer", True, False),
        ColumnFacts("nickname", "text", True, False),
        ColumnFacts("points", "numeric(12,2)", False, False),
    )
    predicted, changes = predict_value_schema(_contract(), facts)
    assert changes == ["type:member_id:integer", "dropped:tier", "not_null:nickname", "added:points"]
    fields = {f["name"]: f for f in predicted["fields"][0]["type"][1]["fields"]}
    assert fields["member_id"]["type"] == "int"
    assert fields["nickname"]["type"] == "string"
    assert fields["points"]["type"][0] == "null"
    assert "tier" not in fields


def test_avro_types_follow_debezium_string_decimals_and_adaptive_micro() -> None:
    assert avro_type_for("bigint") == "long"
    assert avro_type_for("timestamp with time zone")["connect.name"] == "io.debezium.time.ZonedTimestamp"
    assert avro_type_for("timestamp without time zone")["connect.name"] == "io.debezium.time.MicroTimestamp"
    # NUMERIC travels as text, so a scale change is no schema change.
    assert avro_type_for("numeric(10,2)") == "string"
    assert same_type(avro_type_for("numeric(10,2)"), avro_type_for("numeric(10,4)"))
    assert same_type(["null", "string"], avro_type_for("character varying(20)"))
    assert avro_type_for("box") == "bytes"
    assert avro_type_for("interval")["connect.name"] == "io.debezium.time.Interval"
    assert avro_type_for("timestamp(3) without time zone")["connect.name"] == "io.debezium.time.Timestamp"
    assert not same_type(avro_type_for("bigint"), avro_type_for("numeric"))

"""Locating one record: bytes -> decoded change placed in a customer's partition, or a named poison."""

from __future__ import annotations

import json
from typing import Any

import pytest

from consumer.exceptions import DecodeError, PlacementError, RegistryUnavailable
from consumer.locate import locate
from scv.contracts.registration import SourceMapping, TableMapping

MAPPING = SourceMapping.build(
    "crm",
    "crm",
    [
        TableMapping("crm", "public.customers", "profile", customer_key="customer_id"),
        TableMapping("crm", "public.emails", "email", via_table="public.customers", via_column="owner"),
    ],
)
CUSTOMERS = MAPPING.tables["public.customers"]
EMAILS = MAPPING.tables["public.emails"]


def decode(data: bytes) -> dict[str, Any]:
    """Test records travel as JSON bytes: what matters here is what locate does with the decoded form."""
    decoded: dict[str, Any] = json.loads(data)
    return decoded


def value(op: str, table: str, after: dict[str, Any] | None, ts_us: int = 1_000) -> bytes:
    body = {"op": op, "source": {"schema": "public", "table": table, "ts_us": ts_us}, "after": after}
    return json.dumps(body).encode()


def test_update_lands_in_its_customers_partition() -> None:
    located = locate(
        "crm.public.customers",
        CUSTOMERS,
        b'{"customer_id": 7}',
        value("u", "customers", {"customer_id": 7, "name": "Ada"}),
        decode,
    )
    assert located is not None
    assert located.placement is not None
    assert located.placement.customer_id == "7"
    assert located.placement.ref.entity_id == "7"
    assert located.event.write_ts == 1_000


def test_via_table_is_placed_through_its_parent() -> None:
    located = locate(
        "crm.public.emails",
        EMAILS,
        b'{"id": 3}',
        value("c", "emails", {"id": 3, "owner": 7, "email": "a@b.c"}),
        decode,
    )
    assert located is not None
    assert located.placement is not None
    assert located.placement.customer_id is None
    assert located.placement.parent is not None
    assert located.placement.parent.entity_id == "7"


def test_tombstone_is_nothing_to_apply() -> None:
    assert locate("crm.public.customers", CUSTOMERS, b'{"customer_id": 7}', None, decode) is None


def test_truncate_has_no_placement() -> None:
    located = locate("crm.public.customers", CUSTOMERS, None, value("t", "customers", None), decode)
    assert located is not None
    assert located.event.op == "t"
    assert located.placement is None


def test_topic_of_no_registered_table_is_poison_naming_the_topic() -> None:
    with pytest.raises(PlacementError, match=r"crm\.public\.orders belongs to no registered source table"):
        locate("crm.public.orders", None, None, value("c", "orders", {"id": 1}), decode)


def test_undecodable_value_is_poison() -> None:
    def refuse(_data: bytes) -> dict[str, Any]:
        raise DecodeError("magic byte is 1, expected 0")

    with pytest.raises(DecodeError, match="magic byte"):
        locate("crm.public.customers", CUSTOMERS, None, b"\x01junk", refuse)


def test_registry_outage_is_not_poison() -> None:
    def unreachable(_data: bytes) -> dict[str, Any]:
        raise RegistryUnavailable("registry unreachable for id 12")

    with pytest.raises(RegistryUnavailable):
        locate("crm.public.customers", CUSTOMERS, b'{"customer_id": 7}', b"\x00\x00\x00\x00\x0c", unreachable)


def test_row_without_its_customer_key_is_poison_naming_the_fix() -> None:
    with pytest.raises(PlacementError, match="customer key column 'customer_id' is not in the row"):
        locate(
            "crm.public.customers",
            CUSTOMERS,
            b'{"id": 7}',
            value("c", "customers", {"id": 7, "name": "Ada"}),
            decode,
        )

"""The read client's pure core: rows -> typed views, page tokens, driver errors -> client errors."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from cassandra import (
    AuthenticationFailed,
    ConsistencyLevel,
    InvalidRequest,
    OperationTimedOut,
    ReadTimeout,
    Unavailable,
)
from cassandra.cluster import NoHostAvailable
from cassandra.cqltypes import MapType, UTF8Type

from scv.client.core import PageTokens, Row, build_page, build_view, map_error, may_fall_back
from scv.client.exceptions import (
    ClientConfigurationError,
    CustomerNotFound,
    InvalidPageToken,
    StoreTimeout,
    StoreUnavailable,
    ViewDecodeError,
)
from scv.client.models import plain_cells

APPLIED = datetime(2026, 12, 1, 10, 0, 0)  # CQL timestamps come back naive (UTC)
COMMIT_US = 1_764_583_200_123_456  # 2025-12-01T10:00:00.123456Z


def row(
    kind: str,
    entity_id: str,
    cells: dict[str, str],
    applied: datetime = APPLIED,
    ended: datetime | None = None,
) -> Row:
    return (kind, "crm", "public.t", entity_id, cells, COMMIT_US, applied, ended)


ROWS = [
    row("email", "7", {"email": "s:ada@example.com", "primary": "b:true"}),
    row(
        "profile",
        "42",
        {
            "balance": "n:12.30",
            "born": "d:1815-12-10",
            "seen": "t:2024-03-01T10:00:00.123456+02:00",
            "ref": "u:12345678-1234-5678-1234-567812345678",
            "prefs": 'j:{"lang": "it", "n": 1.50, "tags": [1, 2.5]}',
            "nick": "N:",
            "tags": 'a:["s:a", "n:1.0"]',
        },
        applied=APPLIED + timedelta(seconds=5),
    ),
]
READ_AT = datetime(2026, 12, 1, 10, 0, 30, tzinfo=UTC)


def test_view_groups_entities_by_section() -> None:
    view = build_view("42", ROWS, READ_AT, stale=False)
    assert list(view.sections) == ["email", "profile"]
    assert [e.id for e in view.sections["email"]] == ["7"]
    assert view.entity_count == 2


def test_view_values_keep_their_source_types() -> None:
    profile = build_view("42", ROWS, READ_AT, stale=False).sections["profile"][0].attributes
    assert profile["balance"] == Decimal("12.30")
    assert str(profile["balance"]) == "12.30"
    assert profile["born"] == date(1815, 12, 10)
    assert profile["seen"] == datetime(2024, 3, 1, 8, 0, 0, 123456, tzinfo=UTC)
    assert profile["ref"] == UUID("12345678-1234-5678-1234-567812345678")
    assert profile["prefs"] == {"lang": "it", "n": Decimal("1.50"), "tags": [1, Decimal("2.5")]}
    assert profile["nick"] is None
    assert profile["tags"] == ["a", Decimal("1.0")]


def test_view_carries_source_time_applied_time_and_age() -> None:
    view = build_view("42", ROWS, READ_AT, stale=False)
    entity = view.sections["email"][0]
    assert entity.source_ts == datetime(2025, 12, 1, 10, 0, 0, 123456, tzinfo=UTC)
    assert entity.applied_ts == APPLIED.replace(tzinfo=UTC)
    assert view.last_applied == (APPLIED + timedelta(seconds=5)).replace(tzinfo=UTC)
    assert view.age == timedelta(seconds=25)


def test_view_renders_the_documented_json_contract() -> None:
    assert build_view("42", ROWS, READ_AT, stale=False).to_json() == {
        "customer_id": "42",
        "sections": {
            "email": [
                {
                    "id": "7",
                    "source": "crm",
                    "table": "public.t",
                    "attributes": {"email": "ada@example.com", "primary": True},
                    "source_ts": "2025-12-01T10:00:00.123456+00:00",
                    "applied_ts": "2026-12-01T10:00:00+00:00",
                }
            ],
            "profile": [
                {
                    "id": "42",
                    "source": "crm",
                    "table": "public.t",
                    "attributes": {
                        "balance": "12.30",
                        "born": "1815-12-10",
                        "nick": None,
                        # JSON documents embedded as JSON (numbers as numbers), NUMERIC as exact strings
                        "prefs": {"lang": "it", "n": 1.5, "tags": [1, 2.5]},
                        "ref": "12345678-1234-5678-1234-567812345678",
                        "seen": "2024-03-01T10:00:00.123456+02:00",
                        "tags": ["a", "1.0"],
                    },
                    "source_ts": "2025-12-01T10:00:00.123456+00:00",
                    "applied_ts": "2026-12-01T10:00:05+00:00",
                }
            ],
        },
    }


def test_driver_maps_are_read_as_plain_dicts() -> None:
    map_type = MapType.apply_parameters([UTF8Type, UTF8Type])
    stored = map_type.deserialize(map_type.serialize({"b": "s:2", "a": "n:1.0"}, 4), 4)
    assert type(stored).__name__ == "OrderedMapSerializedKey"
    assert plain_cells(stored) == dict(stored.items()) == {"a": "n:1.0", "b": "s:2"}
    assert plain_cells(None) == {}


def test_empty_partition_is_customer_not_found() -> None:
    with pytest.raises(CustomerNotFound, match="'42'"):
        build_view("42", [], READ_AT, stale=False)


def test_version_changes_when_an_entity_is_written_or_deleted() -> None:
    before = build_view("42", ROWS, READ_AT, stale=False).version
    assert build_view("42", list(ROWS), READ_AT, stale=False).version == before
    rewritten = [ROWS[0], row("profile", "42", {}, applied=APPLIED + timedelta(seconds=9))]
    assert build_view("42", rewritten, READ_AT, stale=False).version != before
    assert build_view("42", ROWS[1:], READ_AT, stale=False).version != before


def test_stale_answers_are_marked() -> None:
    assert build_view("42", ROWS, READ_AT, stale=True).possibly_stale
    assert not build_view("42", ROWS, READ_AT, stale=False).possibly_stale


def test_undecodable_cell_names_customer_entity_and_attribute() -> None:
    # Cells are decoded when read (attributes) or rendered (to_json): both name where the bad cell is.
    entity = build_view("42", [row("email", "7", {"email": "?:x"})], READ_AT, stale=False).sections["email"][
        0
    ]
    with pytest.raises(ViewDecodeError, match=r"'42'.*email crm/public.t#7.*'email'"):
        entity.attributes  # noqa: B018
    with pytest.raises(ViewDecodeError, match=r"'42'.*email crm/public.t#7.*'email'"):
        entity.to_json()


def test_attributes_are_read_only() -> None:
    entity = build_view("42", ROWS, READ_AT, stale=False).sections["email"][0]
    with pytest.raises(TypeError):
        entity.attributes["email"] = "x"  # type: ignore[index]


def test_page_version_depends_on_the_page_and_its_token() -> None:
    first = build_page("42", "email", ROWS[:1], "tok", READ_AT, stale=False)
    assert first.version != build_page("42", "email", ROWS[:1], None, READ_AT, stale=False).version
    assert first.to_json()["next_page_token"] == "tok"


KEY = b"k" * 32


def test_page_token_round_trips() -> None:
    tokens = PageTokens(KEY)
    token = tokens.seal("42", "interaction", b"\x00paging-state\xff")
    assert b"paging" not in token.encode()  # opaque: base64, not the bare state
    assert tokens.open("42", "interaction", token) == b"\x00paging-state\xff"


@pytest.mark.parametrize(
    ("customer", "section", "key"),
    [("43", "interaction", KEY), ("42", "consent", KEY), ("42", "interaction", b"x" * 32)],
    ids=["another customer", "another section", "another key"],
)
def test_page_token_is_refused_elsewhere(customer: str, section: str, key: bytes) -> None:
    token = PageTokens(KEY).seal("42", "interaction", b"state")
    with pytest.raises(InvalidPageToken):
        PageTokens(key).open(customer, section, token)


def test_page_token_with_a_forged_state_is_refused() -> None:
    tokens = PageTokens(KEY)
    token = tokens.seal("42", "interaction", b"state-of-42")
    import base64

    blob = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    blob[-1] ^= 1  # the paging state edited, the MAC kept
    forged = base64.urlsafe_b64encode(bytes(blob)).decode().rstrip("=")
    with pytest.raises(InvalidPageToken):
        tokens.open("42", "interaction", forged)


@pytest.mark.parametrize("garbage", ["", "!!!", "AA", "x" * 5000, "é"])
def test_malformed_page_token_is_refused(garbage: str) -> None:
    with pytest.raises(InvalidPageToken):
        PageTokens(KEY).open("42", "interaction", garbage)


def test_short_page_token_key_is_refused_with_the_fix() -> None:
    with pytest.raises(ClientConfigurationError, match=r"secrets\.token_urlsafe"):
        PageTokens(b"short")


UNAVAILABLE = Unavailable("no quorum", ConsistencyLevel.LOCAL_QUORUM, 2, 1)
READ_TIMEOUT = ReadTimeout("slow", consistency=ConsistencyLevel.LOCAL_QUORUM, required_responses=2)


@pytest.mark.parametrize(
    ("error", "expected", "message"),
    [
        (UNAVAILABLE, StoreUnavailable, "unavailable"),
        (READ_TIMEOUT, StoreTimeout, "in time"),
        (OperationTimedOut("client timeout"), StoreTimeout, "in time"),
        (
            NoHostAvailable("down", {"127.0.0.1:9042": ConnectionRefusedError()}),
            StoreUnavailable,
            "unavailable",
        ),
        (
            NoHostAvailable("auth", {"h": AuthenticationFailed("bad")}),
            ClientConfigurationError,
            "credentials",
        ),
        (InvalidRequest("Keyspace scv_x does not exist"), ClientConfigurationError, "scv store migrate"),
        (InvalidRequest("unconfigured table customer_view"), ClientConfigurationError, "SCV_STORE__KEYSPACE"),
    ],
)
def test_driver_errors_become_client_errors(
    error: Exception, expected: type[Exception], message: str
) -> None:
    mapped = map_error(error, "reading customer '42'")
    assert type(mapped) is expected
    assert "reading customer '42'" in str(mapped)
    assert message in str(mapped)


@pytest.mark.parametrize(
    ("error", "falls_back"),
    [
        (UNAVAILABLE, True),
        (READ_TIMEOUT, True),
        (NoHostAvailable("retried", {"h1": UNAVAILABLE}), True),
        (NoHostAvailable("down", {"h1": ConnectionRefusedError()}), False),
        (InvalidRequest("bad"), False),
    ],
)
def test_fallback_only_when_fewer_replicas_might_answer(error: Any, falls_back: bool) -> None:
    assert may_fall_back(error) is falls_back


def test_ended_entities_are_kept_marked_or_left_out_on_request() -> None:
    ended = datetime(2026, 1, 2, tzinfo=UTC)
    rows = [row("interaction", "1", {"subject": "s:purged"}, ended=ended), row("interaction", "2", {})]
    with_history = build_view("42", rows, datetime.now(UTC), stale=False)
    assert with_history.sections["interaction"][0].ended_at == ended
    assert with_history.to_json()["sections"]["interaction"][0]["ended_at"] == ended.isoformat()
    assert "ended_at" not in with_history.to_json()["sections"]["interaction"][1]
    current = build_view("42", rows, datetime.now(UTC), stale=False, include_ended=False)
    assert [e.id for e in current.sections["interaction"]] == ["2"]


def test_a_redirected_read_says_which_customer_was_asked_for() -> None:
    view = build_view("8", [row("profile", "8", {})], datetime.now(UTC), stale=False, redirected_from="7")
    assert view.customer_id == "8"
    assert view.to_json()["redirected_from"] == "7"
    assert (
        "redirected_from"
        not in build_view("8", [row("profile", "8", {})], datetime.now(UTC), False).to_json()
    )

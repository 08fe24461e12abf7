"""Every legal PostgreSQL value reaches the view, typed or in its documented text form (README "Value
forms"), through Debezium's snapshot and its stream; a special value never stops the replicator.

One source, one table holding a column of every type Debezium can carry (the array types it drops are
refused by validation: tests/unit/test_sources_validate.py), rows inserted before onboarding (read by
the initial snapshot) and after (streamed).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from scv.client import CustomerViewClient
from scv.contracts.cells import TextForm
from tests.integration.conftest import (
    REPO,
    ReplicatorProcess,
    SourceDatabase,
    SourceFactory,
    attributes,
    view_of,
    wait_for,
)

SCHEMA = """
CREATE EXTENSION IF NOT EXISTS hstore;
CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
CREATE DOMAIN email AS text;
CREATE TYPE mood AS ENUM ('sad', 'ok');
CREATE TABLE public.everything (
  id text PRIMARY KEY, cid text NOT NULL,
  c_bool boolean, c_bit1 bit(1), c_bit8 bit(8), c_varbit varbit, c_int2 smallint, c_int4 integer,
  c_int8 bigint, c_real real, c_double double precision, c_num numeric, c_num_ps numeric(10,3),
  c_money money, c_char char(3), c_varchar varchar(10), c_text text, c_bytea bytea,
  c_date date, c_time time, c_time_p time(3), c_timetz timetz, c_ts timestamp, c_ts_p timestamp(3),
  c_tstz timestamptz, c_interval interval, c_uuid uuid, c_json json, c_jsonb jsonb, c_xml xml,
  c_hstore hstore, c_inet inet, c_cidr cidr, c_macaddr macaddr, c_macaddr8 macaddr8,
  c_point point, c_line line, c_lseg lseg, c_box box, c_path path, c_polygon polygon, c_circle circle,
  c_int4range int4range, c_numrange numrange, c_tstzrange tstzrange, c_daterange daterange,
  c_multirange int4multirange, c_oid oid, c_tsvector tsvector, c_tsquery tsquery, c_pg_lsn pg_lsn,
  c_txid txid_snapshot, c_name name, c_char1 "char", c_enum mood, c_dom_int posint, c_dom_text email,
  c_a_int int[], c_a_text text[], c_a_num numeric[], c_a_date date[], c_a_ts timestamp[],
  c_a_tstz timestamptz[], c_a_uuid uuid[], c_a_jsonb jsonb[], c_a_inet inet[], c_a_enum mood[],
  c_a_bytea bytea[], c_a_time time[], c_a_range int4range[], c_a_dom email[], c_a_box box[]
);
"""

# One row of every value, and rows of the special ones. {id} and {cid} are filled per insert.
NORMAL = """
INSERT INTO everything VALUES ('{id}', '{cid}', true, B'1', B'10100001', B'101', 1, 2, 3, 1.5, 2.25,
 12.345, 1234567.891, 12.34, 'ab', 'vc', 'text', '\\x00ff', '2024-03-01', '10:11:12.123456',
 '10:11:12.123', '10:11:12+02', '2024-03-01 10:11:12.123456', '2024-03-01 10:11:12.123',
 '2024-03-01 10:11:12.123456+02', '1 year 2 mons 3 days 04:05:06.789',
 '12345678-1234-5678-1234-567812345678', '{{"a": 1}}', '{{"b": [1, 2.50]}}', '<a>x</a>',
 'k=>v, n=>NULL', '192.168.0.1/24', '10.0.0.0/8', '08:00:2b:01:02:03', '08:00:2b:01:02:03:04:05',
 '(1.5,2.5)', '{{1,-1,0}}', '[(0,0),(1,1)]', '((0,0),(1,1))', '[(0,0),(1,1),(2,0)]',
 '((0,0),(1,1),(2,0))', '<(0,0),2>', '[1,10)', '(1.5,2.5]',
 '[2024-01-01 00:00+00,2024-02-01 00:00+00)', '[2024-01-01,2024-02-01)', '{{[1,3), [5,7)}}', 12345,
 'a fat cat', 'fat & rat', '16/B374D848', '10:20:10,14,15', 'nm', 'c', 'ok', 5, 'a@b.c',
 '{{1,2,NULL}}', '{{"a","b c",NULL}}', '{{1.5,2}}', '{{2024-01-01,infinity}}',
 '{{"2024-01-01 10:00:00",infinity}}', '{{"2024-01-01 10:00:00+00",infinity}}',
 '{{12345678-1234-5678-1234-567812345678}}', ARRAY['{{"a":1}}'::jsonb], '{{10.0.0.1}}', '{{sad,ok}}',
 ARRAY['\\x01'::bytea], '{{10:00:00}}', ARRAY[int4range(1,3)], '{{a@b}}', ARRAY[box(point(0,0),point(1,1))])
"""
SPECIAL = """
INSERT INTO everything (id, cid, c_date, c_ts, c_ts_p, c_tstz, c_num, c_num_ps, c_real, c_double, c_time,
                        c_interval, c_money) VALUES
 ('{p}inf', '{p}inf', 'infinity', 'infinity', 'infinity', 'infinity', 'NaN', 'NaN', 'NaN', 'Infinity',
  '24:00:00', '-178000000 years', '-92233720368547758.08'),
 ('{p}-inf', '{p}-inf', '-infinity', '-infinity', '-infinity', '-infinity', 'Infinity', NULL,
  '-Infinity', '-Infinity', '00:00:00', '1 microsecond', '92233720368547758.07'),
 ('{p}y10000', '{p}y10000', '10000-01-01', '10000-01-01 00:00:00', '10000-01-01 00:00:00',
  '10000-01-01 00:00:00+00', '-Infinity', NULL, NULL, NULL, NULL, '178000000 years', NULL),
 ('{p}bc', '{p}bc', '4713-01-01 BC', '4713-01-01 00:00:00 BC', NULL, '4713-01-01 00:00:00+00 BC',
  1e-100, NULL, NULL, NULL, NULL, NULL, NULL)
"""
TABLES = "  public.everything: {kind: thing, customer_key: cid}\n"

EXPECTED_NORMAL: dict[str, Any] = {
    "c_bool": True,
    "c_bit1": True,
    "c_bit8": "10100001",
    "c_varbit": "101",
    "c_int2": 1,
    "c_int4": 2,
    "c_int8": 3,
    "c_real": 1.5,
    "c_double": 2.25,
    "c_num": Decimal("12.345"),
    "c_num_ps": Decimal("1234567.891"),
    "c_money": Decimal("12.34"),
    "c_char": "ab ",
    "c_varchar": "vc",
    "c_text": "text",
    "c_bytea": b"\x00\xff",
    "c_date": date(2024, 3, 1),
    "c_time": time(10, 11, 12, 123456),
    "c_time_p": time(10, 11, 12, 123000),
    "c_timetz": time(8, 11, 12, tzinfo=UTC),
    "c_ts": datetime(2024, 3, 1, 10, 11, 12, 123456),
    "c_ts_p": datetime(2024, 3, 1, 10, 11, 12, 123000),
    "c_tstz": datetime(2024, 3, 1, 8, 11, 12, 123456, tzinfo=UTC),
    "c_interval": TextForm("interval", "P1Y2M3DT4H5M6.789S"),
    "c_uuid": UUID("12345678-1234-5678-1234-567812345678"),
    # The read client hands JSON documents out parsed, fractions as Decimal.
    "c_json": {"a": 1},
    "c_jsonb": {"b": [1, Decimal("2.50")]},
    "c_xml": "<a>x</a>",
    "c_hstore": {"k": "v", "n": None},
    "c_inet": "192.168.0.1/24",
    "c_cidr": "10.0.0.0/8",
    "c_macaddr": "08:00:2b:01:02:03",
    "c_macaddr8": "08:00:2b:01:02:03:04:05",
    "c_point": "(1.5,2.5)",
    "c_line": "{1.0,-1.0,0.0}",
    "c_lseg": "[(0.0,0.0),(1.0,1.0)]",
    "c_box": "(1.0,1.0),(0.0,0.0)",
    "c_path": "[(0.0,0.0),(1.0,1.0),(2.0,0.0)]",
    "c_polygon": "((0.0,0.0),(1.0,1.0),(2.0,0.0))",
    "c_circle": "<(0.0,0.0),2.0>",
    "c_int4range": "[1,10)",
    "c_numrange": "(1.5,2.5]",
    "c_tstzrange": '["2024-01-01 00:00:00+00","2024-02-01 00:00:00+00")',
    "c_daterange": "[2024-01-01,2024-02-01)",
    "c_multirange": "{[1,3),[5,7)}",
    "c_oid": 12345,
    "c_tsvector": "'a' 'cat' 'fat'",
    "c_tsquery": "'fat' & 'rat'",
    "c_pg_lsn": "16/B374D848",
    "c_txid": "10:20:10,14,15",
    "c_name": "nm",
    "c_char1": "c",
    "c_enum": "ok",
    "c_dom_int": 5,
    "c_dom_text": "a@b.c",
    "c_a_int": [1, 2, None],
    "c_a_text": ["a", "b c", None],
    "c_a_num": [Decimal("1.5"), Decimal("2")],
    "c_a_date": [date(2024, 1, 1), TextForm("date", "infinity")],
    "c_a_ts": [datetime(2024, 1, 1, 10), TextForm("timestamp", "infinity")],
    "c_a_tstz": [datetime(2024, 1, 1, 10, tzinfo=UTC), TextForm("timestamptz", "infinity")],
    "c_a_uuid": [UUID("12345678-1234-5678-1234-567812345678")],
    "c_a_jsonb": [{"a": 1}],
    "c_a_inet": ["10.0.0.1"],
    "c_a_enum": ["sad", "ok"],
    "c_a_bytea": [b"\x01"],
    "c_a_time": [time(10)],
    "c_a_range": ["[1,3)"],
    "c_a_dom": ["a@b"],
    "c_a_box": ["(1.0,1.0),(0.0,0.0)"],
}


def _special(streamed: bool) -> dict[str, dict[str, Any]]:
    expected: dict[str, dict[str, Any]] = {
        "inf": {
            "c_date": TextForm("date", "infinity"),
            "c_ts": TextForm("timestamp", "infinity"),
            "c_ts_p": TextForm("timestamp", "infinity"),
            "c_tstz": TextForm("timestamptz", "infinity"),
            "c_num": Decimal("NaN"),
            "c_num_ps": Decimal("NaN"),
            "c_real": float("nan"),
            "c_double": float("inf"),
            "c_time": TextForm("time", "24:00:00"),
            "c_interval": TextForm("interval", "P-178000000Y0M0DT0H0M0S"),
            "c_money": Decimal("-92233720368547758.08"),
        },
        "-inf": {
            "c_date": TextForm("date", "-infinity"),
            "c_ts": TextForm("timestamp", "-infinity"),
            "c_ts_p": TextForm("timestamp", "-infinity"),
            "c_tstz": TextForm("timestamptz", "-infinity"),
            "c_num": Decimal("Infinity"),
            "c_real": float("-inf"),
            "c_double": float("-inf"),
            "c_time": time(0),
            "c_interval": TextForm("interval", "P0Y0M0DT0H0M0.000001S"),
            "c_money": Decimal("92233720368547758.07"),
        },
        "y10000": {
            "c_date": TextForm("date", "+10000-01-01"),
            "c_ts": TextForm("timestamp", "+10000-01-01T00:00:00"),
            "c_ts_p": TextForm("timestamp", "+10000-01-01T00:00:00"),
            "c_tstz": TextForm("timestamptz", "+10000-01-01T00:00:00.000000+00:00"),
            "c_num": Decimal("-Infinity"),
            "c_interval": TextForm("interval", "P178000000Y0M0DT0H0M0S"),
        },
    }
    if not streamed:
        # The snapshot reads MONEY through JDBC as a double: beyond 2^53 cents it keeps 16 digits
        # (README, "Value forms"); the stream carries every digit.
        expected["inf"]["c_money"] = Decimal("-9.223372036854776E+16")
        expected["-inf"]["c_money"] = Decimal("9.223372036854776E+16")
    if streamed:
        # The snapshot reads dates before 1582 through JDBC's Julian calendar (README, "Value forms");
        # the stream carries PostgreSQL's proleptic Gregorian value, as here.
        expected["bc"] = {
            "c_date": TextForm("date", "-4712-01-01"),
            "c_ts": TextForm("timestamp", "-4712-01-01T00:00:00"),
            "c_tstz": TextForm("timestamptz", "-4712-01-01T00:00:00.000000+00:00"),
            "c_num": Decimal("1E-100"),
        }
    return expected


@pytest.fixture(scope="module")
def prefix() -> str:
    return f"vf{uuid.uuid4().hex[:6]}-"


@pytest.fixture(scope="module")
def every_type(source_database: SourceFactory, replicator: ReplicatorProcess, prefix: str) -> SourceDatabase:
    before = NORMAL.format(id="snap", cid=f"{prefix}snap") + ";\n" + SPECIAL.format(p=f"{prefix}snap-")
    return source_database(SCHEMA + before, TABLES)


def _row(reader: CustomerViewClient, customer: str, entity: str) -> dict[str, Any] | None:
    return attributes(view_of(reader, customer), "thing").get(entity)


def _same(actual: Any, expected: Any) -> bool:
    if isinstance(expected, list):
        return isinstance(actual, list) and len(actual) == len(expected) and all(map(_same, actual, expected))
    if isinstance(expected, Decimal) and expected.is_nan():
        return isinstance(actual, Decimal) and actual.is_nan()
    if isinstance(expected, float) and math.isnan(expected):
        return isinstance(actual, float) and math.isnan(actual)
    return type(actual) is type(expected) and actual == expected


def _differences(row: dict[str, Any], expected: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {
        k: (row.get(k, "<absent>"), v) for k, v in expected.items() if not _same(row.get(k, "<absent>"), v)
    }


def test_a_value_of_every_type_streams_into_the_view(
    every_type: SourceDatabase, reader: CustomerViewClient, prefix: str
) -> None:
    customer = f"{prefix}stream"
    every_type.execute(NORMAL.format(id="stream", cid=customer))
    row = wait_for(lambda: _row(reader, customer, "stream"), what="the row of every type")
    assert _differences(row, EXPECTED_NORMAL) == {}


def test_a_value_of_every_type_is_read_by_the_snapshot(
    every_type: SourceDatabase, reader: CustomerViewClient, prefix: str
) -> None:
    row = wait_for(lambda: _row(reader, f"{prefix}snap", "snap"), what="the snapshot row of every type")
    assert _differences(row, EXPECTED_NORMAL) == {}


@pytest.mark.parametrize("streamed", [True, False], ids=["streamed", "snapshot"])
def test_special_values_land_in_their_faithful_form(
    every_type: SourceDatabase, reader: CustomerViewClient, prefix: str, streamed: bool
) -> None:
    path = "live-" if streamed else "snap-"
    if streamed:
        every_type.execute(SPECIAL.format(p=f"{prefix}{path}"))
    for name, expected in _special(streamed).items():
        key = f"{prefix}{path}{name}"
        row = wait_for(lambda k=key: _row(reader, k, k), what=f"the {name} row ({path[:-1]})")
        assert _differences(row, expected) == {}, name


def test_an_infinity_timestamp_does_not_stop_the_replicator(
    every_type: SourceDatabase, reader: CustomerViewClient, replicator: ReplicatorProcess, prefix: str
) -> None:
    # The reproduction: one legal row killed `scv consume` for every source.
    every_type.execute(
        "INSERT INTO everything (id, cid, c_ts) VALUES (%s, %s, 'infinity')", (f"{prefix}P2", f"{prefix}P2")
    )
    every_type.execute(
        "INSERT INTO everything (id, cid, c_text) VALUES (%s, %s, 'after')", (f"{prefix}P3",) * 2
    )
    wait_for(lambda: _row(reader, f"{prefix}P3", f"{prefix}P3"), what="a change after the infinity row")
    assert _row(reader, f"{prefix}P2", f"{prefix}P2") == {
        **{
            c: None
            for c in _row(reader, f"{prefix}P2", f"{prefix}P2") or {}
            if c not in ("id", "cid", "c_ts")
        },
        "id": f"{prefix}P2",
        "cid": f"{prefix}P2",
        "c_ts": TextForm("timestamp", "infinity"),
    }
    assert replicator.process.poll() is None, replicator.log_tail()


def test_special_values_render_in_the_json_read_contract(
    every_type: SourceDatabase, reader: CustomerViewClient, prefix: str
) -> None:
    customer = f"{prefix}snap-inf"
    wait_for(lambda: _row(reader, customer, customer), what="the infinity row")
    out = subprocess.run(
        [sys.executable, "-m", "scv", "view", "get", customer, "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    attrs = json.loads(out.stdout)["sections"]["thing"][0]["attributes"]
    assert attrs["c_ts"] == "infinity"
    assert attrs["c_date"] == "infinity"
    assert attrs["c_num"] == "NaN"
    assert attrs["c_real"] == "NaN"
    assert attrs["c_double"] == "Infinity"
    assert attrs["c_time"] == "24:00:00"
    assert attrs["c_interval"] == "P-178000000Y0M0DT0H0M0S"

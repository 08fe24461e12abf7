"""One canonical text per value, computed alike by PostgreSQL (SQL) and by Python (from the view's cells).

    canonical(Decimal("10.500"))                          # '10.5'
    canonical_sql('"balance"', "numeric(18,4)")           # SQL yielding '10.5' for 10.5000
    row_hash_sql(columns), row_hash(values)               # the same md5 on both sides

`scv verify` compares a system of record with the view without moving rows: PostgreSQL hashes each row
in SQL, the verifier hashes the view's typed cells, and equal hashes mean equal rows. So every type
needs one text form both sides produce exactly: what Debezium delivered and the replicator typed
(``scv/contracts/cells.py``), rendered here, must equal what the SQL expression renders from the live
column. The rules, by type:

- integers, text, enums, uuid, json/jsonb, and every type whose value the view keeps as the source's
  text (the output function's text, which is what logical decoding sends): the text as is — SQL
  ``concat(col)`` runs the type's output function (unlike ``::text``, it keeps ``char(n)`` padding);
- numeric: the exact value without insignificant zeros (``10.5000`` and ``10.5`` are one value);
  ``NaN`` as is;
- boolean: ``true`` / ``false``;
- timestamps: ``YYYY-MM-DDTHH:MM:SS.ffffff``, in UTC for timestamptz; ``infinity`` as is;
- date: ``YYYY-MM-DD`` (ISO DateStyle); time: ``HH:MM:SS.ffffff``;
- bytea: lower-case hex;
- arrays: the md5 of each element's canonical text (``N`` for NULL), comma-separated, in order;
- NULL: no text (``N`` in a row hash). A column the view's row has no cell for counts as NULL: a
  nullable column added to the source table reaches existing rows' views only with their next change,
  and until then both sides rightly say "no value". (A column added with a non-NULL default differs
  until each row changes; `scv verify --repair` re-reads them.)
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Final
from uuid import UUID

from scv.contracts.cells import AttributeValue, Json

__all__ = [
    "NULL",
    "bucket_of",
    "canonical",
    "canonical_sql",
    "key_hash",
    "key_hash_sql",
    "quote_ident",
    "row_hash",
    "row_hash_sql",
]

NULL: Final = "N"
_STAMP: Final = "%Y-%m-%dT%H:%M:%S.%f"


class _Absent:
    """Marker for a column missing from a view row."""


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def _decimal(value: Decimal) -> str:
    if not value.is_finite():
        return "NaN" if value.is_nan() else ("Infinity" if value > 0 else "-Infinity")
    if value == 0:
        return "0"
    return format(value.normalize(), "f")


def canonical(value: AttributeValue) -> str | None:
    """The canonical text of a typed view cell (None for NULL)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return _decimal(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value)
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.strftime(_STAMP)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return value.replace(tzinfo=None).strftime("%H:%M:%S.%f")
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Json):
        return value.text
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list):
        return ",".join(NULL if (text := canonical(item)) is None else _md5(text) for item in value)
    return str(value)


def _scalar_sql(expr: str, pg_type: str) -> str:
    kind = pg_type.split("(", 1)[0].strip()
    if kind == "boolean":
        return f"CASE WHEN {expr} THEN 'true' WHEN NOT {expr} THEN 'false' END"
    if kind == "numeric":
        return f"CASE WHEN {expr} = 'NaN' THEN 'NaN' ELSE trim_scale({expr})::text END"
    if kind == "timestamp with time zone":
        return (
            f"CASE WHEN isfinite({expr}) THEN to_char({expr} AT TIME ZONE 'UTC', "
            f"'YYYY-MM-DD\"T\"HH24:MI:SS.US') ELSE {expr}::text END"
        )
    if kind == "timestamp without time zone":
        return (
            f"CASE WHEN isfinite({expr}) THEN to_char({expr}, 'YYYY-MM-DD\"T\"HH24:MI:SS.US') "
            f"ELSE {expr}::text END"
        )
    if kind == "date":
        return f"CASE WHEN isfinite({expr}) THEN to_char({expr}, 'YYYY-MM-DD') ELSE {expr}::text END"
    if kind == "time without time zone":
        return f"to_char(date '2000-01-01' + {expr}, 'HH24:MI:SS.US')"
    if kind == "bytea":
        return f"encode({expr}, 'hex')"
    if kind in ("real", "double precision"):
        return f"{expr}::text"
    # concat() runs the type's output function (unlike ::text, it keeps char(n) padding); it turns
    # NULL into '', hence the guard.
    return f"CASE WHEN {expr} IS NOT NULL THEN concat({expr}) END"


def canonical_sql(expr: str, pg_type: str) -> str:
    """SQL yielding the canonical text of ``expr`` (a column of type ``pg_type``, format_type form)."""
    if pg_type.endswith("[]"):
        element = _scalar_sql("e.v", pg_type[:-2])
        return (
            f"CASE WHEN {expr} IS NOT NULL THEN array_to_string(ARRAY(SELECT coalesce(md5({element}), "
            f"'{NULL}') FROM unnest({expr}) WITH ORDINALITY AS e(v, n) ORDER BY e.n), ',') END"
        )
    return _scalar_sql(expr, pg_type)


def row_hash_sql(columns: Sequence[tuple[str, str]]) -> str:
    """SQL md5 of a row's canonical texts; ``columns``: (name, pg_type), in the order hashed."""
    parts = ", ".join(
        f"coalesce(md5({canonical_sql(quote_ident(name), pg_type)}), '{NULL}')" for name, pg_type in columns
    )
    return f"md5(concat_ws('|', {parts}))"


def row_hash(values: Sequence[AttributeValue | _Absent]) -> str:
    """The md5 of a view row's cells, in the order ``row_hash_sql`` hashes its columns."""
    parts = []
    for value in values:
        if isinstance(value, _Absent):
            parts.append(NULL)
        else:
            text = canonical(value)
            parts.append(NULL if text is None else _md5(text))
    return _md5("|".join(parts))


def key_hash_sql(columns: Sequence[tuple[str, str]]) -> str:
    """SQL identity of a row: the md5 of its key columns' canonical texts."""
    parts = ", ".join(f"coalesce({canonical_sql(quote_ident(n), t)}, '{NULL}')" for n, t in columns)
    return f"md5(concat_ws('|', {parts}))"


def key_hash(values: Sequence[AttributeValue]) -> str:
    return _md5("|".join(NULL if (text := canonical(v)) is None else text for v in values))


def bucket_of(key_md5: str, buckets: int) -> int:
    """Which bucket a row's key hash falls in (SQL: ``bucket_sql``)."""
    return int(key_md5[:4], 16) % buckets


def bucket_sql(key_md5_sql: str, buckets: int) -> str:
    return f"mod(('x' || substr({key_md5_sql}, 1, 4))::bit(16)::int, {buckets})"


ABSENT_CELL: Final = _Absent()

"""Typed attribute values <-> the text cells of the view's ``attributes`` map: the read contract's
value forms, shared by the writer (store/writer.py) and every reader (the client library).

Each source column is one map entry, so each has its own write timestamp and partial updates and
replays merge cell by cell. A cell is ``<tag>:<payload>``: the tag keeps the source type, so a
NUMERIC comes back as ``Decimal`` with its exact digits, a timestamptz as an aware ``datetime`` with
its microseconds, and NULL as ``None`` (distinct from "column absent").

    encode_value(Decimal("12.30")) == "n:12.30"
    decode_value("n:12.30") == Decimal("12.30")

Every legal source value has a form (README, "Value forms"): NUMERIC ``NaN``/``Infinity`` are
``Decimal`` values, a non-finite float is a float (rendered ``"NaN"``/``"Infinity"`` in JSON, which has no
such numbers), and a value no Python type holds faithfully — a timestamp at ``infinity``, a date after
9999 or before year 1, ``24:00:00``, an interval (months do not fit a ``timedelta``) — is a
``TextForm``: its kind and its faithful text, ``v:timestamp:infinity``.
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, TypeAlias
from uuid import UUID

__all__ = [
    "AttributeValue",
    "CellDecodeError",
    "Json",
    "TextForm",
    "cell_to_json",
    "decode_value",
    "encode_value",
    "to_json_compatible",
]


class CellDecodeError(ValueError):
    """A stored attribute cell cannot be decoded (not written by scv, or by a newer version)."""


class Json:
    """A JSON document (jsonb/json column), kept as its text so key order and numbers survive."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def parsed(self) -> Any:
        return json.loads(self.text, parse_float=Decimal)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Json) and json.loads(self.text) == json.loads(other.text)

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return f"Json({self.text!r})"


@dataclass(frozen=True, slots=True)
class TextForm:
    """A source value kept as its faithful text, because no Python value holds it.

    ``kind`` says what it is (``date``, ``timestamp``, ``timestamptz``, ``time``, ``timetz``,
    ``interval``); ``text`` is ISO 8601 where ISO has a form (expanded years ``+10000-01-01``, astronomical
    years ``-4712-01-01`` for 4713 BC, durations ``P1Y2M3DT4H5M6.789S``), else PostgreSQL's own words
    (``infinity``, ``-infinity``, ``24:00:00``).

        TextForm("timestamp", "infinity")
    """

    kind: str
    text: str

    def __post_init__(self) -> None:
        if not self.kind or ":" in self.kind:
            raise ValueError(f"a TextForm kind is a word without ':', got {self.kind!r}")

    def __str__(self) -> str:
        # What an entity id or a customer key made of this value looks like.
        return self.text


AttributeValue: TypeAlias = (
    None
    | bool
    | int
    | float
    | Decimal
    | str
    | bytes
    | datetime
    | date
    | time
    | UUID
    | Json
    | TextForm
    | list["AttributeValue"]
)


def encode_value(value: AttributeValue) -> str:
    # Order matters: bool is an int, datetime is a date.
    if value is None:
        return "N:"
    if isinstance(value, bool):
        return "b:true" if value else "b:false"
    if isinstance(value, int):
        return f"i:{value}"
    if isinstance(value, float):
        return f"f:{value!r}"
    if isinstance(value, Decimal):
        return f"n:{value}"
    if isinstance(value, str):
        return f"s:{value}"
    if isinstance(value, bytes):
        return "x:" + base64.b64encode(value).decode("ascii")
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return f"l:{value.isoformat()}"  # local (timestamp without time zone)
        return f"t:{value.isoformat()}"
    if isinstance(value, date):
        return f"d:{value.isoformat()}"
    if isinstance(value, time):
        return f"T:{value.isoformat()}"
    if isinstance(value, UUID):
        return f"u:{value}"
    if isinstance(value, Json):
        return f"j:{value.text}"
    if isinstance(value, TextForm):
        return f"v:{value.kind}:{value.text}"
    if isinstance(value, list):
        return "a:" + json.dumps([encode_value(item) for item in value], ensure_ascii=False)
    raise TypeError(f"cannot store a value of type {type(value).__name__}")


def decode_value(cell: str) -> AttributeValue:
    tag, sep, payload = cell.partition(":")
    if not sep:
        raise CellDecodeError(f"cell {cell[:40]!r} has no type tag; was it written by scv?")
    try:
        match tag:
            case "N":
                return None
            case "b":
                return payload == "true"
            case "i":
                return int(payload)
            case "f":
                return float(payload)
            case "n":
                return Decimal(payload)
            case "s":
                return payload
            case "x":
                return base64.b64decode(payload)
            case "t" | "l":
                return datetime.fromisoformat(payload)
            case "d":
                return date.fromisoformat(payload)
            case "T":
                return time.fromisoformat(payload)
            case "u":
                return UUID(payload)
            case "j":
                return Json(payload)
            case "v":
                kind, sep, text = payload.partition(":")
                if not sep:
                    raise ValueError("a text form is v:<kind>:<text>")
                return TextForm(kind, text)
            case "a":
                return [decode_value(item) for item in json.loads(payload)]
    except (ValueError, TypeError) as exc:
        raise CellDecodeError(f"cell with tag {tag!r} has a malformed payload: {exc}") from exc
    raise CellDecodeError(f"unknown cell type tag {tag!r}; upgrade scv to read this view")


def to_json_compatible(value: AttributeValue) -> Any:
    """The read contract's JSON rendering: NUMERIC as a string with its exact digits (``"NaN"``,
    ``"Infinity"`` too), timestamps as ISO-8601 (with offset when the source had one), dates as
    YYYY-MM-DD, uuid as a string, JSON as embedded JSON, arrays as lists, NULL as null, a float NaN or
    infinity as the string ``"NaN"``/``"Infinity"``/``"-Infinity"`` (JSON has no such numbers), a
    ``TextForm`` as its text."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, TextForm):
        return value.text
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, Json):
        return json.loads(value.text)
    if isinstance(value, list):
        return [to_json_compatible(item) for item in value]
    raise TypeError(f"cannot render a value of type {type(value).__name__}")


# Tags whose payload already is the read contract's text: the writer stored ``str()``/``isoformat()``
# of the value, which is exactly what to_json_compatible renders (tests/unit/test_values.py checks
# every tag against encode_value + decode_value + to_json_compatible).
_TEXT_TAGS = frozenset("stldTunx")


def cell_to_json(cell: str) -> Any:
    """The read contract's JSON form of a stored cell, without building the typed value first: a
    1,000-entity view renders several times faster (no Decimal, datetime or UUID to make and undo).

        cell_to_json("n:12.30") == "12.30" == to_json_compatible(decode_value("n:12.30"))
    """
    tag, sep, payload = cell.partition(":")
    if not sep:
        raise CellDecodeError(f"cell {cell[:40]!r} has no type tag; was it written by scv?")
    if tag in _TEXT_TAGS:
        return payload
    try:
        match tag:
            case "N":
                return None
            case "b":
                return payload == "true"
            case "i":
                return int(payload)
            case "f":
                return to_json_compatible(float(payload))  # NaN and infinities as strings
            case "j":
                return json.loads(payload)
            case "v":
                _kind, sep, text = payload.partition(":")
                if not sep:
                    raise ValueError("a text form is v:<kind>:<text>")
                return text
            case "a":
                return [cell_to_json(item) for item in json.loads(payload)]
    except (ValueError, TypeError) as exc:
        raise CellDecodeError(f"cell with tag {tag!r} has a malformed payload: {exc}") from exc
    raise CellDecodeError(f"unknown cell type tag {tag!r}; upgrade scv to read this view")

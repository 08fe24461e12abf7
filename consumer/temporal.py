"""Debezium's temporal encodings -> Python values, or a faithful ``TextForm`` where Python has none.

    date_from_days(19783)                    # date(2024, 3, 1)
    date_from_days(2932897)                  # TextForm("date", "+10000-01-01")
    timestamp_from_micros(9223372036825200000)   # TextForm("timestamp", "infinity")

PostgreSQL holds dates from 4714 BC to 5874897 AD and timestamps to 294276 AD, plus ``infinity`` and
``-infinity``; Python's ``date``/``datetime`` hold years 1-9999. Values outside Python's range keep
their ISO 8601 text with expanded or astronomical years (``+10000-01-01``, ``-4712-01-01`` is 4713 BC),
the form Debezium itself uses for timestamptz. Debezium passes ``infinity`` through as sentinel numbers
that depend on the path (snapshot over JDBC, streaming over pgoutput, inside arrays); the ones below
were read from Debezium 3.5 records on the local stack (tests/integration/test_value_forms.py inserts
them through both paths and reads them back).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Final

from scv.contracts.cells import TextForm

__all__ = [
    "date_from_days",
    "time_from_micros",
    "timestamp_from_micros",
    "timestamp_from_millis",
    "zoned_time",
    "zoned_timestamp",
]

_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()
_GREGORIAN_CYCLE_DAYS: Final = 146_097  # 400 years: the calendar repeats exactly
_DAY_US: Final = 86_400_000_000
_EPOCH: Final = datetime(1970, 1, 1)

# Days since 1970-01-01 that Debezium 3.5 sends for a date at ±infinity. Snapshot (JDBC) and array
# elements: PgJDBC's infinity instants floored to days, truncated to int. Streaming (pgoutput):
# PostgreSQL's own sentinels (INT_MAX/INT_MIN days since 2000-01-01) shifted to 1970, wrapping.
_DATE_INFINITY: Final = {
    -622_191_234: "infinity",
    -625_821_272: "-infinity",
    -2_147_472_692: "infinity",
    -2_147_472_691: "-infinity",
}
# PostgreSQL's range in days since 1970 (4714-11-24 BC .. 5874897-12-31): anything outside is a
# sentinel or a value Debezium could not carry.
_PG_MIN_DAY: Final = -2_440_588
_PG_MAX_DAY: Final = 2_145_042_905
# PgJDBC's DATE_POSITIVE_INFINITY / DATE_NEGATIVE_INFINITY (milliseconds), which Debezium passes
# through for timestamp columns on every path: as microseconds for timestamp(4-6), as milliseconds
# for timestamp(0-3).
_TS_INFINITY_MS: Final = {9_223_372_036_825_200: "infinity", -9_223_372_036_832_400: "-infinity"}
_TS_INFINITY_US: Final = {ms * 1000: text for ms, text in _TS_INFINITY_MS.items()}
_PG_MIN_US: Final = _PG_MIN_DAY * _DAY_US
# Debezium's text for timestamptz ±infinity; inside arrays -infinity arrives as the year 292269055
# (Java's largest instant printed after an overflow): no PostgreSQL timestamp is that late.
_ZONED_INFINITY: Final = {
    "infinity": "infinity",
    "-infinity": "-infinity",
    "+292269055-12-02T23:00:00.000000Z": "-infinity",
}


def _iso_date(days: int) -> str:
    """ISO 8601 date for any day count, with expanded (``+10000``) or astronomical (``-4712``) years."""
    ordinal = days + _EPOCH_ORDINAL
    # Shift by whole 400-year cycles into Python's range, where the calendar is the same.
    cycles = (ordinal - 1) // _GREGORIAN_CYCLE_DAYS
    base = date.fromordinal(ordinal - cycles * _GREGORIAN_CYCLE_DAYS)
    year = base.year + 400 * cycles
    if year > 9999:
        year_text = f"+{year}"
    elif year < 0:
        year_text = f"-{-year:04d}"
    else:
        year_text = f"{year:04d}"
    return f"{year_text}-{base.month:02d}-{base.day:02d}"


def _iso_time(micros: int) -> str:
    return (_EPOCH + timedelta(microseconds=micros)).time().isoformat()


def date_from_days(days: int) -> date | TextForm:
    """``io.debezium.time.Date``: days since 1970-01-01."""
    special = _DATE_INFINITY.get(days)
    if special is not None:
        return TextForm("date", special)
    try:
        return date.fromordinal(days + _EPOCH_ORDINAL)
    except (ValueError, OverflowError):
        pass
    if not _PG_MIN_DAY <= days <= _PG_MAX_DAY:
        return TextForm("date", f"out of range: {days} days from 1970-01-01")
    return TextForm("date", _iso_date(days))


def timestamp_from_micros(micros: int) -> datetime | TextForm:
    """``io.debezium.time.MicroTimestamp``: a timestamp without time zone, microseconds since 1970."""
    special = _TS_INFINITY_US.get(micros)
    if special is not None:
        return TextForm("timestamp", special)
    try:
        return _EPOCH + timedelta(microseconds=micros)
    except OverflowError:
        pass
    if micros < _PG_MIN_US:
        # Debezium overflows computing timestamps near PostgreSQL's maximum (294276 AD).
        return TextForm("timestamp", f"out of range: {micros} microseconds from 1970-01-01")
    days, rest = divmod(micros, _DAY_US)
    return TextForm("timestamp", f"{_iso_date(days)}T{_iso_time(rest)}")


def timestamp_from_millis(millis: int) -> datetime | TextForm:
    """``io.debezium.time.Timestamp``: timestamp(0-3), milliseconds since 1970."""
    special = _TS_INFINITY_MS.get(millis)
    if special is not None:
        return TextForm("timestamp", special)
    return timestamp_from_micros(millis * 1000)


def time_from_micros(micros: int) -> time | TextForm:
    """``io.debezium.time.MicroTime``: microseconds since midnight; PostgreSQL allows ``24:00:00``."""
    if 0 <= micros < _DAY_US:
        return (_EPOCH + timedelta(microseconds=micros)).time()
    if micros == _DAY_US:
        return TextForm("time", "24:00:00")
    return TextForm("time", f"out of range: {micros} microseconds from midnight")


def zoned_timestamp(text: str) -> datetime | TextForm:
    """``io.debezium.time.ZonedTimestamp``: ISO 8601 text in UTC (``Z``)."""
    special = _ZONED_INFINITY.get(text)
    if special is not None:
        return TextForm("timestamptz", special)
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        # Years outside 1-9999: the text is already ISO 8601; only the zone is spelled like Python's.
        return TextForm("timestamptz", text.removesuffix("Z") + "+00:00" if text.endswith("Z") else text)


def zoned_time(text: str) -> time | TextForm:
    """``io.debezium.time.ZonedTime``: ISO 8601 time in UTC (``Z``)."""
    try:
        return time.fromisoformat(text)
    except ValueError:
        return TextForm("timetz", text)

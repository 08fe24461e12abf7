"""Errors of the replicator.

Two families, because they are handled in opposite ways:
- ``PoisonRecord``: this record can never be applied as it is (undecodable bytes, unknown schema id,
  a row the mapping cannot place). It is parked in the dead-letter topic with its original bytes and
  consumption continues.
- ``TransientFailure``: a dependency (schema registry, store) is out. The batch is retried with
  backoff, forever; nothing is dead-lettered and nothing is committed meanwhile.
"""

from __future__ import annotations

__all__ = [
    "DecodeError",
    "PlacementError",
    "PoisonRecord",
    "RegistryUnavailable",
    "ReplicatorError",
    "TransientFailure",
    "UnknownSchema",
]


class ReplicatorError(Exception):
    """Base of every replicator error."""


class PoisonRecord(ReplicatorError):
    """The record can never be applied; ``reason`` is a short, bounded label for metrics/headers."""

    reason = "poison"


class DecodeError(PoisonRecord):
    reason = "undecodable"


class UnknownSchema(PoisonRecord):
    reason = "unknown_schema_id"


class PlacementError(PoisonRecord):
    reason = "unplaceable"


class TransientFailure(ReplicatorError):
    """A dependency is unavailable; retry the whole batch."""


class RegistryUnavailable(TransientFailure):
    pass

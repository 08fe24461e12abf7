"""Errors of the replicator.

Two families, because they are handled in opposite ways:
- ``PoisonRecord``: this record can never be applied as it is (undecodable bytes, unknown schema id,
  a row the mapping cannot place, a write the store refuses for good, anything unexpected raised while
  decoding, placing or planning it). It is parked in the dead-letter topic with its original bytes and
  consumption continues.
- ``TransientFailure``: a dependency (schema registry, store) is out. The batch is retried with
  backoff, forever; nothing is dead-lettered and nothing is committed meanwhile.
"""

from __future__ import annotations

__all__ = [
    "ConsumerFenced",
    "DecodeError",
    "PlacementError",
    "PoisonRecord",
    "RegistryUnavailable",
    "ReplicatorError",
    "StoreRefused",
    "TransientFailure",
    "Unexpected",
    "UnknownSchema",
]


class ReplicatorError(Exception):
    """Base of every replicator error."""


class ConsumerFenced(ReplicatorError):
    """The Kafka consumer hit a fatal error and can never consume again: with static membership
    (``group.instance.id``), the group coordinator fenced it, e.g. after a broker restart reloaded an
    older member id for its instance id. Only a new consumer recovers: the worker process exits with
    ``REJOIN_EXIT_CODE`` and its supervisor starts it again at once (consumer/supervisor.py)."""

    # EX_TEMPFAIL: "try again": not a crash.
    REJOIN_EXIT_CODE = 75


class PoisonRecord(ReplicatorError):
    """The record can never be applied; ``reason`` is a short, bounded label for metrics/headers."""

    reason = "poison"


class DecodeError(PoisonRecord):
    reason = "undecodable"


class UnknownSchema(PoisonRecord):
    reason = "unknown_schema_id"


class PlacementError(PoisonRecord):
    reason = "unplaceable"


class StoreRefused(PoisonRecord):
    """The store refuses this change's writes and always will; the message is the store's."""

    reason = "store_rejected"


class Unexpected(PoisonRecord):
    """Decoding, placing, planning or writing this record raised something no rule expected: a bug
    or a value nobody foresaw. Parked with the error, so one record never stops the pipeline."""

    reason = "unexpected"

    @classmethod
    def of(cls, exc: BaseException) -> Unexpected:
        return cls(f"{type(exc).__name__}: {exc}")


class TransientFailure(ReplicatorError):
    """A dependency is unavailable; retry the whole batch."""


class RegistryUnavailable(TransientFailure):
    pass

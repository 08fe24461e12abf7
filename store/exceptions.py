"""Errors of the store package."""

from __future__ import annotations

__all__ = ["MigrationError", "StoreError", "StoreRejected", "StoreUnavailable"]


class StoreError(Exception):
    """Base of every store error."""


class StoreUnavailable(StoreError):
    """The CQL cluster cannot be reached or timed out; callers retry, they never drop the write."""


class StoreRejected(StoreError):
    """The store refuses these writes and always will (an empty or oversized key, an invalid request):
    retrying cannot help. ``reason`` is a short bounded label (``empty_key``, ``key_too_large``,
    ``invalid_request``); the message is the store's own words."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class MigrationError(StoreError):
    """A migration file is malformed or the applied history disagrees with the files."""

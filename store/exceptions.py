"""Errors of the store package."""

from __future__ import annotations

__all__ = ["MigrationError", "StoreError", "StoreUnavailable"]


class StoreError(Exception):
    """Base of every store error."""


class StoreUnavailable(StoreError):
    """The CQL cluster cannot be reached or timed out; callers retry, they never drop the write."""


class MigrationError(StoreError):
    """A migration file is malformed or the applied history disagrees with the files."""

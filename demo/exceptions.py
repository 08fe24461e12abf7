"""Errors of the demo package; each message says what was found and what to run next."""

from __future__ import annotations

__all__ = ["DemoError", "PostgresUnavailable", "SecretsMissing", "SeedConflict", "WorkloadFailed"]


class DemoError(Exception):
    """Base of every demo error."""


class PostgresUnavailable(DemoError):
    """The local stack's PostgreSQL does not answer."""


class SeedConflict(DemoError):
    """A demo database exists with other contents than the requested seed would produce."""


class SecretsMissing(DemoError):
    """A CDC role's password file is absent: the demo has not been seeded on this machine."""


class WorkloadFailed(DemoError):
    """A workload operation failed; the workload stops rather than skip a change."""

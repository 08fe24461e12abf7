"""Errors of the native stack; each message names the service or file and what to do."""

from __future__ import annotations

__all__ = [
    "HealthCheckFailed",
    "InstallError",
    "ServiceStartError",
    "StackBusy",
    "StackError",
    "StackUpFailed",
]


class StackError(Exception):
    """Base of every error ``scv stack`` reports."""


class InstallError(StackError):
    """An artifact (Maven or apt) could not be installed."""


class ServiceStartError(StackError):
    """A service exited or did not become healthy in time."""

    def __init__(self, service: str, message: str, log_tail: str = "") -> None:
        super().__init__(f"{service}: {message}")
        self.service = service
        self.log_tail = log_tail


class HealthCheckFailed(StackError):
    """A health request got an answer that is not the healthy one (or none)."""


class StackUpFailed(StackError):
    """`up` finished with one or more services not healthy; ``failures`` says which and why."""

    def __init__(self, failures: list[ServiceStartError]) -> None:
        super().__init__("; ".join(str(f) for f in failures))
        self.failures = failures


class StackBusy(StackError):
    """Another run held the stack for its exclusive use longer than this one would wait."""

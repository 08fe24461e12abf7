"""Errors of the source onboarding package; each message names the file/key and the fix."""

from __future__ import annotations

__all__ = ["ConnectError", "SourceError", "SpecError", "ValidationFailed"]


class SourceError(Exception):
    """Base of every onboarding error."""


class SpecError(SourceError):
    """The spec file cannot be read or does not have the documented shape."""


class ValidationFailed(SourceError):
    """The live database or cluster would not support the spec; ``problems`` lists each fix."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class ConnectError(SourceError):
    """Kafka Connect refused or failed a request."""

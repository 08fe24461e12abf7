"""Errors of the source onboarding package; each message names the file/key and the fix.

SourceError
├── SpecError           the spec file cannot be read or has the wrong shape
├── ValidationFailed    the live database/cluster would not support the spec (``problems``)
├── ConnectError        Kafka Connect refused or failed a request
├── RegistryError       the schema registry refused or failed a request
├── SourceNotFound      no connector/registration of that name
├── OnboardingTimeout   the connector did not reach RUNNING / finish its snapshot in time
└── SchemaDrift         `scv schemas check` found changes the replicator or registry would reject
"""

from __future__ import annotations

__all__ = [
    "ConnectError",
    "OnboardingTimeout",
    "RegistryError",
    "SchemaDrift",
    "SourceError",
    "SourceNotFound",
    "SpecError",
    "ValidationFailed",
]


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


class RegistryError(SourceError):
    """The schema registry refused or failed a request."""


class SourceNotFound(SourceError):
    """No connector or registration of that name exists."""


class OnboardingTimeout(SourceError):
    """The connector did not reach RUNNING or finish its initial snapshot in time."""


class SchemaDrift(SourceError):
    """Checked-in contracts, the registry and the live tables disagree in a way that would be rejected."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems

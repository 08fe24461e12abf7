"""What can stop the peer's run, one class per cause; each message names the fix."""

from __future__ import annotations

__all__ = ["PeerError", "PeerSchemaError", "PeerSinkFailed", "PeerWorkerError"]


class PeerError(Exception):
    """The peer (kafka-connect-scylladb) could not be measured."""


class PeerSchemaError(PeerError):
    """A change topic's schema has something the connector cannot write (the topic and field named)."""


class PeerWorkerError(PeerError):
    """The peer's Kafka Connect worker did not start or answer (its log's tail attached)."""


class PeerSinkFailed(PeerError):
    """The sink connector or one of its tasks failed while the benchmark waited on it."""

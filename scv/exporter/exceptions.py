"""Errors of the exporter and of `scv status`; each message says what to do."""

from __future__ import annotations

__all__ = ["ExporterError"]


class ExporterError(Exception):
    """The exporter cannot run (its port is taken, a setting is wrong); the message names the fix."""

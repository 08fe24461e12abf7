"""Structured logging: one configuration for every `scv` process.

    configure_logging(settings.log_level, settings.log_format)
    log = structlog.get_logger(__name__); log.info("batch_applied", events=120)

Secrets never reach a log line: settings hold them as ``SecretStr`` and the redaction processor masks
any key that looks like a credential, whatever code logged it.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

__all__ = ["configure_logging", "redact"]

_SECRET_KEY = re.compile(r"pass(word)?|secret|token|credential|api[_-]?key", re.IGNORECASE)


def redact(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        if _SECRET_KEY.search(key):
            event[key] = "***"
    return event


def configure_logging(level_name: str = "INFO", log_format: str = "console") -> None:
    """``log_format``: "json" (one object per line, for collectors) or "console" (for humans)."""
    level = logging.getLevelNamesMapping().get(level_name.upper(), logging.INFO)
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )

"""Retry what a dependency outage interrupted, with backoff, until it succeeds or shutdown is asked.

    result = retry_transient(lambda: applier.apply(changes), "store", stopping=lambda: flag, policy=p)

Only ``TransientFailure`` and ``StoreUnavailable`` are retried: a dependency is out and the same call
will succeed once it is back. Anything else is not this module's to hide.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog
from tenacity import Retrying, retry_if_exception_type, wait_exponential_jitter

from consumer.exceptions import TransientFailure
from consumer.metrics import ERRORS
from store.exceptions import StoreUnavailable

__all__ = ["Backoff", "ShutdownRequested", "retry_transient"]

log = structlog.get_logger(__name__)
T = TypeVar("T")


class ShutdownRequested(Exception):
    """Raised out of a retry loop when SIGTERM arrives during an outage: nothing is committed."""


@dataclass(frozen=True)
class Backoff:
    initial_s: float = 0.2
    max_s: float = 10.0


def retry_transient(
    action: Callable[[], T], what: str, *, stopping: Callable[[], bool], backoff: Backoff
) -> T:
    """Run ``action`` until it succeeds; transient failures back off exponentially (with jitter),
    forever, unless ``stopping()`` turns true: then ``ShutdownRequested`` (the batch stays uncommitted)."""

    def stop(_state: Any) -> bool:
        return stopping()

    def before_sleep(state: Any) -> None:
        ERRORS.labels(kind=f"{what}_unavailable").inc()
        outcome = state.outcome
        log.warning(
            "dependency_unavailable_retrying",
            dependency=what,
            attempt=state.attempt_number,
            error=str(outcome.exception()) if outcome else None,
        )

    retrying = Retrying(
        retry=retry_if_exception_type((TransientFailure, StoreUnavailable)),
        wait=wait_exponential_jitter(initial=backoff.initial_s, max=backoff.max_s),
        stop=stop,
        before_sleep=before_sleep,
        reraise=True,
    )
    try:
        return retrying(action)
    except (TransientFailure, StoreUnavailable) as exc:
        raise ShutdownRequested(str(exc)) from exc

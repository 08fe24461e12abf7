"""Apply a batch; when it fails for good, find the change(s) at fault by bisection and apply the rest.

    isolator = Isolator(applier.apply, retry=lambda action: retry_transient(action, "store", ...))
    result = isolator.apply(changes)
    result.outcomes[i]        # the outcome of changes[i], or None when it was refused
    result.refused            # {i: the PoisonRecord to park changes[i] with}

A store outage is transient and ``retry`` waits it out (nothing is isolated, nothing is parked). Any
other failure of a sub-batch is permanent for some change in it: the store refuses its writes
(``StoreRejected``: an empty or oversized key, an invalid request) or planning or writing it raised
something no rule expected. Such a sub-batch is split in two halves, applied in order, until the
failing change stands alone: it is refused with the error, every other change is applied. A batch of n
changes with one culprit costs about 2·log2(n) extra attempts; every attempt is idempotent (write
timestamps), so the writes of failed attempts that did land are harmless. Halves keep the batch's
order, so per-entity order is the same as for any smaller batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import structlog

from consumer.exceptions import PoisonRecord, StoreRefused, Unexpected
from consumer.metrics import STORE_REJECTIONS
from consumer.planner import Located, Outcome
from consumer.retry import ShutdownRequested
from store.exceptions import StoreRejected

__all__ = ["Isolated", "Isolator"]

log = structlog.get_logger(__name__)
T = TypeVar("T")

Apply = Callable[[Sequence[Located]], list[Outcome]]
Retry = Callable[[Callable[[], list[Outcome]]], list[Outcome]]


@dataclass
class Isolated:
    outcomes: list[Outcome | None]
    refused: dict[int, PoisonRecord] = field(default_factory=dict)


class Isolator:
    def __init__(self, apply: Apply, retry: Retry) -> None:
        self._apply = apply
        self._retry = retry

    def apply(self, changes: Sequence[Located]) -> Isolated:
        result = Isolated(outcomes=[None] * len(changes))
        if changes:
            self._apply_range(changes, 0, len(changes), result)
        return result

    def _apply_range(self, changes: Sequence[Located], start: int, end: int, result: Isolated) -> None:
        part = changes[start:end]
        try:
            outcomes = self._retry(lambda: self._apply(part))
        except ShutdownRequested:
            raise
        except Exception as exc:
            if end - start > 1:
                middle = (start + end) // 2
                self._apply_range(changes, start, middle, result)
                self._apply_range(changes, middle, end, result)
                return
            result.refused[start] = self._poison(changes[start], exc)
            return
        result.outcomes[start:end] = outcomes

    @staticmethod
    def _poison(change: Located, exc: Exception) -> PoisonRecord:
        event = change.event
        where = f"{event.source}/{event.table} op={event.op}"
        if isinstance(exc, StoreRejected):
            STORE_REJECTIONS.labels(reason=exc.reason).inc()
            log.error("change_refused_by_store", change=where, reason=exc.reason, error=str(exc))
            return StoreRefused(f"{where}: the store refuses this change ({exc.reason}): {exc}")
        log.error("change_failed_unexpectedly", change=where, error=f"{type(exc).__name__}: {exc}")
        return Unexpected(f"{where}: {type(exc).__name__}: {exc}")

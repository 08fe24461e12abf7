"""Stop a source whose records are being dead-lettered faster than a threshold, instead of draining its
whole stream into the dead-letter topic (e.g. its schemas were deleted from the registry, or a mapping
went wrong: every record fails, and parking millions of them helps nobody).

    guard = PoisonStormGuard(threshold=100, window_s=60.0)
    if guard.parked("crm"):        # True for the dead letter that reaches the threshold
        ...pause the source (consumer/holds.py)...

The threshold counts dead letters per source in a sliding window; 0 turns the guard off. What happens
after a trip (the source is held until `scv sources resume NAME`) is consumer/holds.py's job.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

__all__ = ["PoisonStormGuard"]


class PoisonStormGuard:
    def __init__(self, threshold: int, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._threshold = threshold
        self._window_s = window_s
        self._clock = clock
        self._recent: dict[str, deque[float]] = {}

    @property
    def threshold(self) -> int:
        return self._threshold

    @property
    def window_s(self) -> float:
        return self._window_s

    def parked(self, source: str) -> bool:
        """Count one dead letter of ``source``; True when the source has reached the threshold."""
        if self._threshold <= 0:
            return False
        now = self._clock()
        recent = self._recent.setdefault(source, deque(maxlen=self._threshold))
        recent.append(now)
        return len(recent) >= self._threshold and now - recent[0] <= self._window_s

    def forget(self, source: str) -> None:
        """Start counting afresh (the source was resumed)."""
        self._recent.pop(source, None)

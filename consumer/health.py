"""Is this replicator alive, and is it ready? The answers behind /livez and /readyz.

    health = Health(live_after_s=60, ready_max_lag_s=30)
    health.progressed()                   # the loop went round (a batch, an empty poll, a retry)
    health.lag_reported(assigned=6, max_lag_s=0.4)   # from the lag gauges' thread
    health.live()                         # (True, 'loop progressed 0.2 s ago')

Live: the loop went round within ``live_after_s`` — after a batch, after a poll that found nothing
to do (idle), or after an attempt to reach a store or registry that is out (the outage is retried
with backoff: restarting the process would not bring the dependency back, and would drop its warm
cache). A loop stuck inside one call, a hung write or a deadlock, stops going round: that is what
restarting fixes.

Ready: partitions are assigned and none is more than ``ready_max_lag_s`` behind, as last measured by
the lag gauges (consumer/lag_gauges.py); before their first report a replicator is not ready.

Called from the loop's thread and the lag thread, read from the HTTP server's threads: every field
is a single reference assignment, which needs no lock.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["Health"]


class Health:
    def __init__(
        self, live_after_s: float, ready_max_lag_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._live_after_s = live_after_s
        self._ready_max_lag_s = ready_max_lag_s
        self._clock = clock
        self._progressed_at = clock()
        self._assigned = 0
        self._max_lag_s: float | None = None

    def progressed(self) -> None:
        self._progressed_at = self._clock()

    def lag_reported(self, assigned: int, max_lag_s: float) -> None:
        self._assigned = assigned
        self._max_lag_s = max_lag_s

    def live(self) -> tuple[bool, str]:
        quiet = self._clock() - self._progressed_at
        if quiet > self._live_after_s:
            return False, f"loop made no progress for {quiet:.0f}s (bound {self._live_after_s:g}s)"
        return True, f"loop progressed {quiet:.1f}s ago"

    def ready(self) -> tuple[bool, str]:
        if self._max_lag_s is None:
            return False, "lag not measured yet"
        if not self._assigned:
            return False, "no partition assigned"
        if self._max_lag_s > self._ready_max_lag_s:
            return False, f"{self._max_lag_s:.1f}s behind (bound {self._ready_max_lag_s:g}s)"
        return True, f"{self._assigned} partitions, {self._max_lag_s:.1f}s behind"

"""A replicator process killed in the middle of a write round, for the unit tests (over the in-memory
store) and the integration tests (over the real store's writer).

A round's requests land or not independently, so a kill is a cut: of the round holding a mutation
``at`` matches, what ``lost`` matches does not land, the rest does, and nothing follows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from consumer.applier import ViewWrites
from store.mutations import Mutation

__all__ = ["CutWriter", "Killed"]


class Killed(Exception):
    """The process died in the middle of a write round."""


class CutWriter:
    """The store's writer in a process killed during its first round holding a mutation ``at``
    matches. ``lost`` names the requests a cut could lose, so a listing written in the same round as
    the row it guards is lost with it; one written in an earlier round has landed already."""

    def __init__(
        self, writer: ViewWrites, at: Callable[[Mutation], bool], lost: Callable[[Mutation], bool]
    ) -> None:
        self._writer = writer
        self._at = at
        self._lost = lost

    def apply(self, mutations: Iterable[Mutation]) -> int:
        mutations = list(mutations)
        if any(self._at(m) for m in mutations):
            self._writer.apply([m for m in mutations if not self._lost(m)])
            raise Killed
        return self._writer.apply(mutations)

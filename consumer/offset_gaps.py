"""Where a partition starts after an assignment, and the gap when retention deleted what the group
never consumed (pure).

    start = starting_point(committed=120, low=500, high=900)
    start.gap        # 380 records the group never applied: the partition is stopped
    start.offset     # 120: it stays where it was until recovered

``auto.offset.reset=earliest`` used to decide this silently: a committed offset below the low
watermark jumped to the earliest record, and the changes in between were skipped without a trace
(the topics keep 7 days). Now a new group (no committed offset) still starts at the beginning; a
committed offset inside the log resumes there; a committed offset outside it (below the low
watermark: retention deleted unconsumed records; above the high watermark: the topic was recreated)
stops the partition with an error naming the recovery, `scv sources resnapshot NAME`, which re-reads
the source tables and lifts the stop (consumer/holds.py). The consumer runs with
``auto.offset.reset=error`` so a gap that opens while it runs (a long outage) stops it the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING

__all__ = ["StartingPoint", "gap_message", "starting_point"]


@dataclass(frozen=True)
class StartingPoint:
    offset: int
    # Records between the committed offset and the log that the group will never see (0: none).
    gap: int = 0

    @property
    def stopped(self) -> bool:
        return self.gap != 0


def starting_point(committed: int | None, low: int, high: int) -> StartingPoint:
    if committed is None or committed < 0:
        return StartingPoint(OFFSET_BEGINNING)
    if committed < low:
        return StartingPoint(committed, gap=low - committed)
    if committed > high:
        return StartingPoint(committed, gap=high - committed)
    return StartingPoint(committed)


def gap_message(topic: str, partition: int, committed: int | None, low: int, high: int, source: str) -> str:
    if committed is not None and committed > high:
        what = (
            f"the group committed offset {committed} but the partition ends at {high}: the topic was "
            f"deleted and recreated, and its records may not be the ones the view holds"
        )
    else:
        what = (
            f"records {committed if committed is not None else '?'}..{low - 1} were deleted by retention "
            f"before the replicator consumed them: their changes are missing from the view"
        )
    return (
        f"{topic}[{partition}] stopped: {what}. Recover with `scv sources resnapshot {source}` (re-reads "
        f"the source tables; rows deleted meanwhile stay in the view until they are removed by hand), "
        f"which also restarts this partition from its earliest record"
    )

"""When was the record at an offset written? Estimated from (end offset, time) points seen from outside.

    timeline = OffsetTimeline(size=120)
    timeline.observe(end_offset=1200, at=now)        # every poll: the partition's high watermark
    timeline.lag_seconds(committed=1150, now=now)     # how long record 1150 has been waiting

kafka-lag-exporter's estimate (its "lookup table"), which needs no record to be read: each poll adds
the partition's end offset and the time it was seen. The record at offset ``c`` became readable
between the last point whose end offset was still <= c and the first point past it; its time is
interpolated between the two (records assumed evenly spread in between). For an offset older than
the table, the table's average rate extrapolates backwards, and without any rate the oldest point is
the bound. So the estimate keeps growing while a consumer is stuck or dead: ``now`` moves, the
record's estimated time does not.

Two refinements over the plain table:
- a run of polls that saw the same end offset is kept as its first and last point: an idle
  partition neither evicts its history nor blurs when its next record arrived;
- ``seed`` adds a point known from a record's own timestamp (read once when a partition is first
  seen behind), so an exporter that has just started reports the true age instead of zero.

The same arithmetic serves PostgreSQL: a WAL position (LSN) is an offset into the WAL, and the age of
a slot's confirmed_flush_lsn is the time since the server's WAL went past it.
"""

from __future__ import annotations

import bisect

__all__ = ["OffsetTimeline"]


class OffsetTimeline:
    def __init__(self, size: int = 120) -> None:
        if size < 2:
            raise ValueError(f"an offset timeline needs at least 2 points, got size={size}")
        self._size = size
        # (end offset, time seen), both non-decreasing.
        self._points: list[tuple[int, float]] = []

    def __len__(self) -> int:
        return len(self._points)

    @property
    def end_offset(self) -> int | None:
        return self._points[-1][0] if self._points else None

    def observe(self, end_offset: int, at: float) -> None:
        points = self._points
        if points and end_offset < points[-1][0]:
            # The partition went backwards (topic recreated, WAL position of another server): its
            # history describes something else.
            points.clear()
        if len(points) >= 2 and points[-1][0] == points[-2][0] == end_offset:
            points[-1] = (end_offset, at)  # extend the flat run instead of adding to it
        else:
            points.append((end_offset, at))
        if len(points) > self._size:
            del points[: len(points) - self._size]

    def seed(self, end_offset: int, at: float) -> None:
        """Record that the end offset reached ``end_offset`` at ``at`` (from a record's timestamp: the
        record at ``end_offset - 1`` was written then). Ignored when it contradicts what is known."""
        points = self._points
        if points and (end_offset > points[0][0] or at > points[0][1]):
            return
        points.insert(0, (end_offset, at))
        if len(points) > self._size:
            del points[1 : 1 + len(points) - self._size]

    def written_at(self, offset: int) -> float | None:
        """Estimated time the record at ``offset`` became readable; None when no point is known or the
        record does not exist yet (``offset`` >= the latest end offset)."""
        points = self._points
        if not points or offset >= points[-1][0]:
            return None
        offsets = [p[0] for p in points]
        # First point whose end offset is past ``offset``: the record existed by then.
        after = bisect.bisect_right(offsets, offset)
        end_after, time_after = points[after]
        if after > 0:
            end_before, time_before = points[after - 1]
            share = (offset + 1 - end_before) / (end_after - end_before)
            return time_before + (time_after - time_before) * share
        # Older than every point: extrapolate at the table's average rate, or bound by the oldest point.
        first_end, first_time = points[0]
        last_end, last_time = points[-1]
        if last_end > first_end and last_time > first_time:
            seconds_per_record = (last_time - first_time) / (last_end - first_end)
            return first_time - (first_end - 1 - offset) * seconds_per_record
        return first_time

    def lag_seconds(self, committed: int, now: float) -> float:
        """How long the first record not yet committed has been waiting; 0 when there is none."""
        written = self.written_at(committed)
        return 0.0 if written is None else max(0.0, now - written)

"""Progress bars for onboarding, drawn from the ``SnapshotProgress`` reports of connectors/onboard.py.

    with snapshot_bars(Console(stderr=True)) as on_progress:
        onboard_source(spec, settings, on_progress=on_progress)

The onboarding code only reports; whoever runs it (the CLI, the demo, the benchmark) decides how and
whether to draw.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from connectors.onboard import ProgressCallback, SnapshotProgress

__all__ = ["snapshot_bars"]


@contextmanager
def snapshot_bars(console: Console) -> Iterator[ProgressCallback]:
    bars = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
    state: dict[str, TaskID] = {}
    tables: dict[tuple[str, str], TaskID] = {}

    def draw(progress: SnapshotProgress) -> None:
        connector = progress.connector
        if connector not in state:
            state[connector] = bars.add_task(f"{connector}: {progress.phase}", total=None)
        bars.update(state[connector], description=f"{connector}: {progress.phase}")
        for table, rows in progress.rows.items():
            key = (connector, table)
            if key not in tables:
                tables[key] = bars.add_task(f"  {table}", total=max(rows, 1))
            done = progress.records.get(table, 0)
            bars.update(tables[key], completed=min(done, max(rows, 1)) if rows else 1)

    with bars:
        yield draw

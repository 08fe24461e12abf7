"""`scv demo`: the demo package's commands, plus `run`, the whole demo end to end (walkthrough.py)."""

from __future__ import annotations

from demo.cli import app
from scv.cli import walkthrough

__all__ = ["app"]

app.command("run")(walkthrough.run)

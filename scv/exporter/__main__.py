"""`python -m scv.exporter`: the same as `scv exporter` (how the native stack starts it)."""

from scv.exporter.cli import main

main()

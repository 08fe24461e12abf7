"""`python -m scv`: the same as the `scv` console command."""

from scv.cli import main

main()

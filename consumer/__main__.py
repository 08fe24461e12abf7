"""`python -m consumer`: the same as `scv consume`."""

from consumer.cli import main

main()

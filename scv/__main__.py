"""The `scv` console command (and `python -m scv`).

`scv view get` goes straight to the read client's own small command (scv/client/cli.py): a channel
or an operator reading one view should not wait for typer and the service's settings stack, which
cost more than the read itself. Everything else is the typer application in scv/cli.
"""

from __future__ import annotations

import sys


def main() -> None:
    argv = sys.argv[1:]
    if argv[:2] == ["view", "get"]:
        from scv.api.config import configured_client_settings
        from scv.client.cli import main as view_get

        sys.exit(view_get(argv[2:], configured_client_settings()))
    from scv.cli import main as cli

    cli()


if __name__ == "__main__":
    main()

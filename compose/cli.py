"""`scv compose ...`: the compose stack's generated config files.

scv compose render            # rewrite compose/config/generated/ from the native renderers
scv compose render --check    # exit 1, listing what differs, when the committed files are stale
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from compose.generated import GENERATED_DIR, differences, write_files

__all__ = ["app"]

app = typer.Typer(
    help="The compose stack's config files, rendered like the native stack's.", no_args_is_help=True
)
out = Console()
err = Console(stderr=True)


@app.callback()
def _group() -> None:
    # A group even with one command, so `render` is always spelt out (as `scv compose render`).
    pass


@app.command("render")
def render_cmd(
    check: Annotated[
        bool, typer.Option("--check", help="Change nothing; exit 1 when a committed file is stale")
    ] = False,
) -> None:
    """Render the files docker-compose.yml mounts into compose/config/generated/."""
    if check:
        problems = differences()
        if problems:
            err.print(f"[red]{len(problems)} generated file(s) out of date in {GENERATED_DIR}:[/red]")
            for problem in problems:
                err.print(f"  - {problem}", markup=False, highlight=False)
            err.print("next: run `scv compose render` and commit the result", highlight=False)
            raise typer.Exit(1)
        out.print(f"[green]ok:[/green] {GENERATED_DIR} matches its rendering")
        return
    for path in write_files():
        out.print(f"wrote {path}", highlight=False)
    out.print("next: review `git diff compose/config/generated` and commit it with the change that caused it")

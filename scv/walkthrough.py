"""`scv demo run`: the main job end to end on the demo systems of record.

Steps, each idempotent so the command can be re-run at will:
1. migrate the store; 2. seed crm/core/care (1k customers); 3. onboard the three sources through
Debezium; 4. start the replicator in the background (pid file + log under the stack's data dir);
5. print a customer's view assembled from all three systems; 6. change that customer in PostgreSQL
and show how long the view took to reflect it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import typer
from rich.console import Console
from rich.table import Table

from connectors.onboard import add_source
from connectors.spec import load_spec
from demo.secrets import export_demo_passwords
from demo.seed import seed_demo
from scv.settings import Settings, get_settings
from store.exceptions import CustomerNotFound
from store.migrate import migrate
from store.reader import CustomerView, ViewReader
from store.session import open_session

__all__ = ["run", "start_background_replicator"]

SPECS = Path(__file__).resolve().parents[1] / "connectors" / "sources"
SOURCES = ("crm", "core", "care")
console = Console(stderr=False)


def start_background_replicator(settings: Settings) -> int:
    """Start `python -m consumer` detached unless the one this command started earlier still runs."""
    run_dir = settings.stack.data_dir / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    pid_file = run_dir / "replicator.pid"
    if pid_file.exists():
        pid = int(pid_file.read_text())
        try:
            os.kill(pid, 0)
            return pid
        except ProcessLookupError:
            pid_file.unlink()
    log_dir = settings.stack.data_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    with (log_dir / "replicator.log").open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "consumer"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "SCV_LOG_FORMAT": "json"},
        )
    pid_file.write_text(str(process.pid))
    return process.pid


def _customer_in_all_three(settings: Settings) -> str:
    # A customer with rows in every system: CRM profile, core accounts, care interactions.
    with psycopg.connect(settings.postgres.dsn("core")) as core:
        with_accounts = {row[0] for row in core.execute("SELECT DISTINCT customer_id FROM accounts")}
    with psycopg.connect(settings.postgres.dsn("care")) as care:
        rows = care.execute(
            "SELECT customer_id FROM interactions GROUP BY 1 ORDER BY count(*) DESC"
        ).fetchall()
    for (customer_id,) in rows:
        if customer_id in with_accounts:
            return str(customer_id)
    raise typer.Exit(1)


def _print_view(view: CustomerView) -> None:
    table = Table(title=f"Single Customer View — customer {view.customer_id}", show_lines=False)
    for column in ("kind", "source/table", "id", "attributes"):
        table.add_column(column, overflow="fold")
    for kind, entities in sorted(view.sections.items()):
        for entity in entities:
            attrs = entity.to_json()["attributes"]
            shown = ", ".join(f"{k}={str(v)[:40]}" for k, v in list(attrs.items())[:6])
            table.add_row(kind, f"{entity.source}/{entity.table}", entity.id, shown)
    console.print(table)


def run(
    customers: int = typer.Option(1000, help="Demo customers to seed (first run only)."),
) -> None:
    """Seed, onboard, replicate and show one customer's view from crm + core + care."""
    settings = get_settings()
    with open_session(settings.store) as session:
        migrate(session, settings.store.keyspace, settings.store.replication_factor, settings.store.local_dc)
        console.print("[bold]1/5[/] store schema up to date")
        seed_demo(settings, customers=customers)
        console.print(f"[bold]2/5[/] demo systems of record seeded ({customers:,} customers)")
        export_demo_passwords(settings)
        for name in SOURCES:
            add_source(load_spec(SPECS / f"{name}.yaml"), settings, progress=True)
        console.print("[bold]3/5[/] crm, core, care onboarded (Debezium connectors RUNNING)")
        pid = start_background_replicator(settings)
        log_path = settings.stack.data_dir / "logs" / "replicator.log"
        console.print(f"[bold]4/5[/] replicator running (pid {pid}, log {log_path})")

        reader = ViewReader(session, settings.store.keyspace)
        customer_id = _customer_in_all_three(settings)
        deadline = time.monotonic() + 300
        view: CustomerView | None = None
        while time.monotonic() < deadline:
            try:
                view = reader.get(customer_id)
                if {e.source for entities in view.sections.values() for e in entities} >= set(SOURCES):
                    break
            except CustomerNotFound:
                pass
            time.sleep(0.5)
        if view is None:
            console.print("[red]the view did not fill within 5 minutes[/]; check `scv sources status crm` "
                          f"and {settings.stack.data_dir}/logs/replicator.log")
            raise typer.Exit(1)
        _print_view(view)

        # 6. A change in the system of record, and how long the view takes to show it.
        marker = f"demo-{int(time.time())}"
        with psycopg.connect(settings.postgres.dsn("crm"), autocommit=True) as crm:
            crm.execute("UPDATE customers SET segment = %s, updated_at = now() WHERE customer_id = %s",
                        (marker, int(customer_id)))
        changed_at = time.monotonic()
        while time.monotonic() - changed_at < 30:
            profile = reader.get(customer_id).sections.get("profile", [])
            if profile and profile[0].attributes.get("segment") == marker:
                elapsed_ms = (time.monotonic() - changed_at) * 1000
                console.print(f"[bold]5/5[/] crm.customers.segment := {marker!r} visible in the view after "
                              f"[bold]{elapsed_ms:,.0f} ms[/]")
                console.print(f"try: scv view get {customer_id} --json")
                return
            time.sleep(0.02)
    console.print("[red]the change did not reach the view within 30 s[/]; see the replicator log")
    raise typer.Exit(1)

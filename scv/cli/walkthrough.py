"""`scv demo run`: the main job end to end on the demo systems of record.

Steps, each idempotent so the command can be re-run at will:
1. migrate the store; 2. seed crm/core/care (1k customers); 3. onboard the three sources through
Debezium; 4. start the replicator in the background (pid file + log under the stack's data dir);
5. print a customer's view assembled from all three systems; 6. change that customer in PostgreSQL
and show how long the view took to reflect it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import typer
from rich.console import Console

from connectors.exceptions import SourceError
from connectors.onboard import add_source
from connectors.progress import snapshot_bars
from connectors.spec import load_spec
from demo.exceptions import DemoError
from demo.secrets import export_demo_passwords
from demo.seed import seed_demo
from scv.api.config import client_settings
from scv.client import CustomerNotFound, CustomerView, CustomerViewClient, ViewClientError
from scv.config.settings import Settings, get_settings
from scv.kafka.admin import KafkaAdmin
from store.exceptions import StoreError
from store.migrate import migrate
from store.session import open_session

__all__ = ["run", "start_background_replicator"]

SPECS = Path(__file__).resolve().parents[2] / "connectors" / "sources"
SOURCES = ("crm", "core", "care")
# Wide enough for one entity per line even when piped (rich assumes 80 columns off a terminal).
console = Console(width=max(120, shutil.get_terminal_size().columns))
errors = Console(stderr=True)


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
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "SCV_LOG_FORMAT": "json"},
        )
    pid_file.write_text(str(process.pid))
    return process.pid


def _customer_in_all_three(settings: Settings) -> str:
    """A customer with rows in every system: CRM profile, core accounts, care interactions. The
    contact center knows customers only by fiscal code (as its agents spelled it), so its busiest
    caller is matched to the CRM through the code, the way the view itself joins them."""
    with psycopg.connect(settings.postgres.dsn("core")) as core:
        with_accounts = {row[0] for row in core.execute("SELECT DISTINCT customer_id FROM accounts")}
    with psycopg.connect(settings.postgres.dsn("crm")) as crm:
        rows_by_code = crm.execute("SELECT fiscal_code, customer_id FROM customers").fetchall()
        by_code: dict[str, int] = dict(rows_by_code)
    with psycopg.connect(settings.postgres.dsn("care")) as care:
        rows = care.execute(
            "SELECT upper(trim(fiscal_code)) FROM interactions GROUP BY 1 ORDER BY count(*) DESC"
        ).fetchall()
    for (code,) in rows:
        customer_id = by_code.get(code)
        if customer_id in with_accounts:
            return str(customer_id)
    console.print("[red]no customer has rows in crm, core and care[/]; reseed with `scv demo seed --reset`")
    raise typer.Exit(1)


def _wait_caught_up(settings: Settings, topics: list[str], log_path: Path, timeout_s: float = 600) -> None:
    # The view is shown, and the change timed, once the snapshots are applied: before that the
    # view is partial and the change waits in line behind the snapshot's records.
    deadline = time.monotonic() + timeout_s
    with (
        console.status("replicator applying the snapshots") as status,
        KafkaAdmin(settings.kafka.bootstrap_servers) as kafka,
    ):
        while (behind := kafka.group_lag(settings.consumer.group_id, topics)) > 0:
            if time.monotonic() > deadline:
                console.print(
                    f"[red]the replicator is still {behind:,} records behind after {timeout_s:.0f} s[/]; "
                    f"see {log_path}"
                )
                raise typer.Exit(1)
            status.update(f"replicator applying the snapshots: {behind:,} records to go")
            time.sleep(0.5)


def _print_view(view: CustomerView) -> None:
    sources = sorted({e.source for entities in view.sections.values() for e in entities})
    console.rule(f"Single Customer View — customer {view.customer_id} — from {', '.join(sources)}")
    profile = view.profile
    if profile:
        shown = ", ".join(
            f"{name}={chosen.value} ({chosen.holder.source})" for name, chosen in profile.items()
        )
        console.print(f"[bold]profile[/] (composed across sources): {shown}", highlight=False)
    care = [e for e in view.sections.get("interaction", ()) if e.source == "care"]
    if care:
        code = next((e.attributes.get("fiscal_code") for e in care), None)
        console.print(
            f"[bold]care[/] knows this customer only by fiscal code {str(code).strip()!r}: its "
            f"{len(care)} interactions joined the CRM customer through that code",
            highlight=False,
        )
    for kind in view.contact_kinds:
        contacts = view.contacts(kind)
        listed = "; ".join(f"{str(c.value).strip()}{' (primary)' if c.primary else ''}" for c in contacts[:3])
        console.print(f"[bold]{kind} contacts[/] ({len(contacts)}): {listed}", highlight=False)
    for kind, entities in sorted(view.sections.items()):
        console.print(f"[bold]{kind}[/] ({len(entities)})")
        for entity in entities[:5]:
            attrs = entity.to_json()["attributes"]
            shown = ", ".join(f"{k}={str(v)[:32]}" for k, v in list(attrs.items())[:5])
            console.print(f"  {entity.source}/{entity.table}#{entity.id}: {shown}", highlight=False)
        if len(entities) > 5:
            console.print(f"  … {len(entities) - 5} more", highlight=False)
    console.rule()


def _change_and_wait(
    settings: Settings, reader: CustomerViewClient, customer_id: str, timeout_s: float
) -> float | None:
    """Change the customer's segment in crm; seconds until the view shows it, or None on timeout."""
    marker = f"demo-{time.time_ns()}"
    with psycopg.connect(settings.postgres.dsn("crm"), autocommit=True) as crm:
        crm.execute(
            "UPDATE customers SET segment = %s, updated_at = now() WHERE customer_id = %s",
            (marker, int(customer_id)),
        )
    changed_at = time.monotonic()
    while time.monotonic() - changed_at < timeout_s:
        profile = reader.get_view(customer_id).sections.get("profile", ())
        if profile and profile[0].attributes.get("segment") == marker:
            return time.monotonic() - changed_at
        time.sleep(0.01)
    return None


def run(
    customers: int = typer.Option(1000, help="Demo customers to seed (first run only)."),
) -> None:
    """Seed, onboard, replicate and show one customer's view from crm + core + care."""
    try:
        _walk_through(get_settings(), customers)
    except (DemoError, SourceError, StoreError, ViewClientError) as exc:
        # Every step is idempotent: once the cause is fixed, the same command picks up where it stopped.
        errors.print(f"[bold red]error:[/] {exc}", highlight=False)
        errors.print("then rerun `scv demo run`; `scv stack status` shows whether the stack is up")
        raise typer.Exit(1) from exc


def _walk_through(settings: Settings, customers: int) -> None:
    with open_session(settings.store) as session:
        migrate(session, settings.store.keyspace, settings.store.replication_factor, settings.store.local_dc)
        console.print("[bold]1/5[/] store schema up to date")
        seed_demo(settings, customers=customers)
        console.print(f"[bold]2/5[/] demo systems of record seeded ({customers:,} customers)")
        export_demo_passwords(settings)
        specs = [load_spec(SPECS / f"{name}.yaml") for name in SOURCES]
        with snapshot_bars(errors) as on_progress:
            for spec in specs:
                add_source(spec, settings, on_progress=on_progress)
        console.print("[bold]3/5[/] crm, core, care onboarded (Debezium connectors RUNNING)")
        pid = start_background_replicator(settings)
        log_path = settings.stack.data_dir / "logs" / "replicator.log"
        console.print(f"[bold]4/5[/] replicator running (pid {pid}, log {log_path})")
        topics = [spec.names.topic(table) for spec in specs for table in spec.tables]
        _wait_caught_up(settings, topics, log_path)

        with CustomerViewClient(client_settings(settings)) as reader:
            customer_id = _customer_in_all_three(settings)
            deadline = time.monotonic() + 300
            view: CustomerView | None = None
            while time.monotonic() < deadline:
                try:
                    view = reader.get_view(customer_id)
                    if {e.source for entities in view.sections.values() for e in entities} >= set(SOURCES):
                        break
                except CustomerNotFound:
                    pass
                time.sleep(0.5)
            if view is None:
                console.print(
                    "[red]the view did not fill within 5 minutes[/]; check `scv sources status crm` "
                    f"and {settings.stack.data_dir}/logs/replicator.log"
                )
                raise typer.Exit(1)
            _print_view(view)

            # 6. A change in the system of record, and how long the view takes to show it. The first
            # change also waits for a just-started replicator to join its group; the second is timed.
            if _change_and_wait(settings, reader, customer_id, timeout_s=120) is not None:
                elapsed = _change_and_wait(settings, reader, customer_id, timeout_s=30)
                if elapsed is not None:
                    console.print(
                        f"[bold]5/5[/] a change to crm.customers.segment reached the view in "
                        f"[bold]{elapsed * 1000:,.0f} ms[/]"
                    )
                    console.print(
                        f"next: scv view get {customer_id} --json   |   scv demo workload --rate 100"
                    )
                    return
    console.print("[red]the change did not reach the view in time[/]; see the replicator log")
    raise typer.Exit(1)

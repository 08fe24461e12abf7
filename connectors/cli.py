"""`scv sources ...` and `scv schemas ...`: thin typer commands over the Python API of this package.

    scv sources validate connectors/sources/crm.yaml
    scv sources add connectors/sources/crm.yaml
    scv schemas check crm

Every command exits non-zero on failure and prints what to do next; the work is done by functions
tests call directly (connectors.onboard, connectors.operate, connectors.validate, connectors.schemas).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from connectors.exceptions import SchemaDrift, SourceError, ValidationFailed
from connectors.spec import SourceSpec, load_spec
from scv.config.settings import get_settings

__all__ = ["app", "schemas_app"]

app = typer.Typer(help="Onboard and operate CDC sources (Debezium connectors).", no_args_is_help=True)
schemas_app = typer.Typer(help="Avro contracts of the project's topics.", no_args_is_help=True)

out = Console()
err = Console(stderr=True)

SpecFile = Annotated[Path, typer.Argument(help="The source spec (YAML), e.g. connectors/sources/crm.yaml")]
Name = Annotated[str, typer.Argument(help="The source name (the spec's `name`)")]


P = ParamSpec("P")
R = TypeVar("R")


def _fail(message: str, next_step: str | None = None) -> typer.Exit:
    err.print(f"[red]error:[/red] {escape(message)}", markup=True, highlight=False)
    if next_step:
        err.print(f"next: {next_step}", highlight=False)
    return typer.Exit(1)


def _problems(problems: list[str], next_step: str) -> typer.Exit:
    err.print(f"[red]{len(problems)} problem(s):[/red]", markup=True)
    for problem in problems:
        err.print(f"  - {problem}", highlight=False, markup=False)
    err.print(f"next: {next_step}", highlight=False)
    return typer.Exit(1)


def reports_errors(next_step: str | None = None) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Turn the package's errors into what an operator reads: the problem(s), the next command, exit 1.

    ``next_step`` may name the command's arguments (``{name}``, ``{path}``).
    """

    def decorate(command: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(command)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            step = next_step.format(**kwargs) if next_step else None
            try:
                return command(*args, **kwargs)
            except ValidationFailed as exc:
                raise _problems(exc.problems, step or "fix the above, then re-run") from exc
            except SchemaDrift as exc:
                raise _problems(
                    exc.problems, "fix the table or evolve the contract as each line says"
                ) from exc
            except SourceError as exc:
                raise _fail(str(exc), step) from exc

        return run

    return decorate


def _load(path: Path) -> SourceSpec:
    try:
        return load_spec(path)
    except SourceError as exc:
        raise _fail(str(exc), f"fix {path} and re-run") from exc


@app.command("validate")
@reports_errors("fix the above, then `scv sources validate {path}` again")
def validate_cmd(path: SpecFile) -> None:
    """Check the spec against the live database, Kafka Connect and Kafka; list every problem."""
    from connectors.validate import validate_source

    report = validate_source(_load(path), get_settings(), str(path))
    for info in report.infos:
        out.print(f"[blue]info:[/blue] {info}", highlight=False)
    report.raise_for_problems()
    out.print(f"[green]ok:[/green] {path} can be onboarded (`scv sources add {path}`)")


@app.command("grant-sql")
def grant_sql_cmd(path: SpecFile) -> None:
    """Print the least-privilege SQL (role, grants, signal/heartbeat tables, publication) for the DBA."""
    from connectors.grants import grant_sql

    print(grant_sql(_load(path)), end="")


@app.command("add")
@reports_errors("fix the cause; `scv sources add {path}` is safe to re-run (`scv sources status NAME` helps)")
def add_cmd(
    path: SpecFile,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for RUNNING and the snapshot")] = 600,
) -> None:
    """Validate, register the connector, wait through the snapshot, register the mapping."""
    from connectors.onboard import onboard_source
    from connectors.progress import snapshot_bars

    spec = _load(path)
    with snapshot_bars(err) as on_progress:
        result = onboard_source(
            spec, get_settings(), on_progress=on_progress, timeout_s=timeout, origin=str(path)
        )
    for info in result.infos:
        out.print(f"[blue]info:[/blue] {info}", highlight=False)
    if result.updated:
        # The initial snapshot ran when the source was first added; only new tables were read now.
        out.print(f"[green]updated[/green] {result.name}: connector {result.connector} RUNNING, streaming")
    else:
        out.print(f"[green]added[/green] {result.name}: connector {result.connector} RUNNING, snapshot done")
    for table, rows in result.rows.items():
        topic = spec.names.topic(table)
        if table in result.snapshotted:
            out.print(
                f"  {table}: new table, {rows} existing rows snapshotted incrementally -> "
                f"{result.records.get(table, 0)} records in {topic}"
            )
        elif result.updated:
            out.print(f"  {table}: already captured, streaming on ({topic})")
        else:
            out.print(f"  {table}: {rows} rows -> {result.records.get(table, 0)} records in {topic}")
    if result.compatibility_set:
        out.print(f"  compatibility {spec.compatibility} on {len(result.compatibility_set)} subjects")
    if result.compatibility_pending:
        out.print(
            f"  no schema yet for {', '.join(result.compatibility_pending)} (empty tables): re-run `add` "
            f"after their first change to set compatibility"
        )
    out.print("  mapping registered: running replicators start applying it within seconds")
    out.print(
        f"next: `scv sources status {spec.name}`; `scv schemas export {spec.name}` to check in its contracts"
    )


@app.command("render")
@reports_errors("fix the above, then `scv sources render {path}` again")
def render_cmd(
    path: SpecFile,
    k8s: Annotated[
        bool, typer.Option("--k8s", help="Strimzi KafkaConnector and its Secret access, as YAML for GitOps")
    ] = False,
    namespace: Annotated[str, typer.Option(help="--k8s: namespace of the KafkaConnect cluster")] = "scv",
    connect_cluster: Annotated[
        str, typer.Option(help="--k8s: name of the KafkaConnect resource")
    ] = "scv-connect",
    secret: Annotated[
        str | None, typer.Option(help="--k8s: Secret holding the CDC password [default: scv-<source>-cdc]")
    ] = None,
    secret_key: Annotated[str, typer.Option(help="--k8s: key of the password in that Secret")] = "password",
    image: Annotated[str, typer.Option(help="--k8s: the scv image the registration Job runs")] = "scv",
    settings_configmap: Annotated[
        str, typer.Option(help="--k8s: ConfigMap of SCV_* settings (k8s/base)")
    ] = "scv-settings",
) -> None:
    """Print the connector config the worker gets (JSON), or with --k8s the Kubernetes resources (YAML).

    Rendered from the spec and the settings alone, without reading the database: `scv sources
    validate` is what checks the database, the worker and Kafka.
    """
    import json

    settings = get_settings()
    spec = _load(path)
    if not k8s:
        from connectors.render import render_connector_config

        print(json.dumps(render_connector_config(spec, settings.kafka, settings.connect), indent=2))
        return
    import yaml

    from connectors.kubernetes import KubernetesTarget, kubernetes_resources

    target = KubernetesTarget(
        namespace=namespace,
        connect_cluster=connect_cluster,
        secret_name=secret,
        secret_key=secret_key,
        image=image,
        settings_configmap=settings_configmap,
    )
    docs = kubernetes_resources(spec, path.read_text(), settings.kafka, settings.connect, target)
    print(f"# Rendered by `scv sources render --k8s {path}`; source of truth: that spec.")
    print(yaml.safe_dump_all(docs, sort_keys=False, width=1_000_000), end="")
    err.print(
        f"next: create the Secret once (it is never rendered): kubectl -n {namespace} create secret generic "
        f"{target.secret_for(spec.names)} --from-literal={secret_key}=...; the KafkaConnect "
        f"{connect_cluster} must enable the `secrets` config provider (k8s/strimzi/kafka-connect.yaml)",
        highlight=False,
        soft_wrap=True,  # a command to copy: never broken across lines
    )


@app.command("register")
@reports_errors("fix the cause; `scv sources register {path}` is safe to re-run")
def register_cmd(path: SpecFile) -> None:
    """Register a source whose connector exists another way (Strimzi): compatibility and the mapping."""
    from connectors.onboard import register_source

    spec = _load(path)
    result = register_source(spec, get_settings())
    if result.compatibility_set:
        out.print(f"  compatibility {spec.compatibility} on {len(result.compatibility_set)} subjects")
    if result.compatibility_pending:
        out.print(
            f"  no schema yet for {len(result.compatibility_pending)} subjects: re-run `register` once the "
            f"connector has captured each table to set their compatibility"
        )
    out.print(f"[green]registered[/green] {spec.name}: running replicators start applying it within seconds")


@app.command("list")
@reports_errors()
def list_cmd() -> None:
    """Every onboarded source with its connector state."""
    from connectors.operate import list_sources

    sources = list_sources(get_settings())
    table = Table("name", "connector", "state", "database", "tables", "registered")
    for s in sources:
        table.add_row(
            s.name, s.connector, s.state, s.database, ", ".join(s.tables), "yes" if s.registered else "NO"
        )
    out.print(table)


@app.command("status")
@reports_errors()
def status_cmd(name: Name) -> None:
    """Connector/task state (trace on FAILED), slot lag in bytes, last event and heartbeat times."""
    from connectors.operate import source_status

    status = source_status(name, get_settings())
    c = status.connector
    out.print(f"{name}: connector {c.name} {c.state} on {c.worker_id}")
    for task in c.tasks:
        out.print(f"  task {task.id}: {task.state}")
        if task.trace:
            out.print(task.trace, markup=False, highlight=False)
    lag = (
        "unknown (database unreachable)"
        if status.slot_lag_bytes is None
        else f"{status.slot_lag_bytes} bytes"
    )
    out.print(f"  slot {status.slot_name}: active={status.slot_active} lag={lag}")
    out.print(
        f"  last event: {status.last_event_at or 'none yet'}; "
        f"last heartbeat: {status.last_heartbeat_at or 'none'}"
    )
    for hold in status.holds:
        where = (
            "replicator: consumption paused"
            if hold.whole_source
            else f"replicator: {hold.topic}[{hold.partition}]"
        )
        out.print(
            f"  {where} ({hold.reason} since {hold.since:%Y-%m-%d %H:%M:%S}Z): {hold.detail}", markup=False
        )
    if status.record_too_large is not None:
        limit = get_settings().kafka.max_record_bytes
        rows = "; ".join(
            f"{row.table} {', '.join(f'{k}={v}' for k, v in row.key.items()) or '(no primary key)'} "
            f"({row.bytes:,} bytes as text)"
            for row in status.oversized
        )
        raise _fail(
            f"source {name} stopped on a change record over the maximum record size ({limit:,} bytes; "
            f"README, 'Maximum record size'): {status.record_too_large}. Rows of {name} near or over it: "
            f"{rows or 'none now (the row changed since; the Connect worker log names the topic)'}. Nothing "
            f"after that change was captured, nothing was skipped",
            f"exclude the oversized column (exclude_columns) and re-run `scv sources add`, or raise "
            f"SCV_KAFKA__MAX_RECORD_BYTES on the whole stack; shrinking the row does not help (the change "
            f"is already in the WAL); then `scv sources status {name}`",
        )
    if c.failed_trace or c.state == "FAILED":
        raise _fail(
            f"source {name} FAILED", f"fix the cause above, then `scv sources restart {name}` or re-run add"
        )
    paused = [h for h in status.holds if h.whole_source]
    stopped = [h for h in status.holds if not h.whole_source and h.reason == "offset_gap"]
    if paused:
        raise _fail(
            f"the replicator holds back source {name} ({paused[0].reason})",
            f"`scv dlq list --source {name}` shows the parked records; fix the cause, then "
            f"`scv sources resume {name}` and `scv dlq replay --source {name}`",
        )
    if stopped:
        raise _fail(
            f"{len(stopped)} partition(s) of {name} stopped: retention deleted records never applied",
            f"`scv sources resnapshot {name}` re-reads the tables and restarts them",
        )


@app.command("pause")
@reports_errors()
def pause_cmd(name: Name) -> None:
    """Pause the connector; the slot keeps the changes (WAL grows until resume)."""
    from connectors.operate import pause_source

    pause_source(name, get_settings())
    out.print(f"paused {name}; next: `scv sources resume {name}` (WAL accumulates while paused)")


@app.command("resume")
@reports_errors()
def resume_cmd(name: Name) -> None:
    """Resume a paused connector; changes made meanwhile stream from the slot."""
    from connectors.operate import resume_source

    lifted = resume_source(name, get_settings())
    for hold in lifted:
        out.print(f"  lifted the replicator's {hold.reason} hold ({hold.detail})", markup=False)
    out.print(f"resumed {name}; next: `scv sources status {name}`")


@app.command("restart")
@reports_errors()
def restart_cmd(name: Name) -> None:
    """Restart a FAILED connector and its FAILED tasks, once the cause is fixed."""
    from connectors.operate import restart_source

    restart_source(name, get_settings())
    out.print(f"restarted the failed parts of {name}; next: `scv sources status {name}`")


@app.command("resnapshot")
@reports_errors()
def resnapshot_cmd(
    name: Name,
    tables: Annotated[list[str] | None, typer.Argument(help="schema.table ... (default: all)")] = None,
) -> None:
    """Trigger an incremental snapshot (execute-snapshot signal) of some or all tables."""
    from connectors.operate import resnapshot_source

    signal_id = resnapshot_source(name, get_settings(), tables or None)
    out.print(
        f"signalled incremental snapshot {signal_id}; rows are re-emitted as op=r while streaming goes on"
    )


@app.command("remove")
@reports_errors()
def remove_cmd(
    name: Name,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation")] = False,
    delete_topics: Annotated[bool, typer.Option(help="Also delete the source's topics")] = False,
    purge_view: Annotated[bool, typer.Option(help="Also delete the source's entities from the view")] = False,
) -> None:
    """Delete the connector and its offsets, drop slot and publication, delete the registration."""
    from connectors.onboard import remove_source_report, source_names

    names = source_names(name)  # refused before anything is asked or done
    also = " and every entity of it in the view" if purge_view else ""
    question = f"Remove source {name}: connector {names.connector}, its slot, publication and registration"
    if not yes and not typer.confirm(f"{question}{also}?"):
        raise _fail("not confirmed; nothing was changed", f"`scv sources remove {name} --yes`")
    result = remove_source_report(
        name, get_settings(), delete_topics_too=delete_topics, purge_view=purge_view
    )
    for line in result.done:
        out.print(f"  {line}")
    if result.pending_sql:
        out.print("The source database is not the stack's PostgreSQL; a DBA must run:")
        print("\n".join(result.pending_sql))
    kept = "the view keeps this source's data (--purge-view deletes it); " if not purge_view else ""
    out.print(f"next: {kept}topics are kept unless --delete-topics; replicators drop them within seconds")


@schemas_app.command("export")
@reports_errors()
def export_cmd(
    name: Name,
    directory: Annotated[Path, typer.Option(help="Where the contracts live")] = Path("registry_schemas"),
) -> None:
    """Write the registry's latest key/value schemas of a source's topics under registry_schemas/<name>/."""
    from connectors.schemas import export_schemas

    written = export_schemas(name, get_settings(), directory)
    for path in written:
        out.print(f"wrote {path}")
    out.print("next: review and commit them; `scv schemas check` compares them with the registry and tables")


@schemas_app.command("check")
@reports_errors()
def check_cmd(
    name: Annotated[str | None, typer.Argument(help="A source name (default: every exported source)")] = None,
    directory: Annotated[Path, typer.Option(help="Where the contracts live")] = Path("registry_schemas"),
) -> None:
    """Compare checked-in contracts with the registry and the live tables; report what would be rejected."""
    from connectors.schemas import check_schemas

    report = check_schemas(get_settings(), directory, name)
    for line in report:
        out.print(f"  {line}", highlight=False)
    out.print("[green]ok:[/green] contracts, registry and tables agree")

"""`docrag db status`: the server, the schema revision, DocRag's connections, the largest relations."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from bots.cli_common import friendly_errors, settings_of

if TYPE_CHECKING:
    from core.storage.status import DatabaseStatus


@click.command("status")
@click.option("--largest", default=10, show_default=True, type=click.IntRange(1, 100),
              help="How many tables and indexes to list.")
@click.option("--json", "as_json", is_flag=True, help="Print the status as one JSON object.")
@click.pass_context
@friendly_errors
def db_status(ctx: click.Context, largest: int, as_json: bool) -> None:
    """Show the server, the schema revision, connections held by DocRag processes, and the largest tables and indexes."""
    # Imported here: `docrag --help` must not pay for the database stack.
    from bots.db_budget import deployment_connections
    from bots.wiring import open_database
    from core.storage.db import safe_url
    from core.storage.status import database_status

    settings = settings_of(ctx)
    database = open_database(settings, check_schema=False)
    try:
        status = database_status(database.engine, largest=largest)
    finally:
        database.dispose()
    planned = deployment_connections(settings)
    if as_json:
        click.echo(json.dumps({"url": safe_url(database.url), "planned_connections": planned, **status.as_dict()},
                              indent=2))
    else:
        click.echo(render_status(status, safe_url(database.url), planned))


def render_status(status: DatabaseStatus, url: str, planned: dict[str, int]) -> str:
    revision = "up to date" if status.schema_current else f"code needs {status.code_revision}: run `docrag db upgrade`"
    budget = ", ".join(f"{kind} {count}" for kind, count in planned.items())
    lines = [
        f"server       PostgreSQL {status.server_version} at {url}",
        f"schema       {status.schema_revision or 'none'} ({revision})",
        f"connections  {status.connections_total} open of max_connections {status.max_connections}; "
        f"DocRag's processes may open up to {sum(planned.values())} ({budget}, see docs/database.md)",
        "",
        "DocRag connections   total  active  idle  idle in transaction",
    ]
    lines += [
        f"  {p.application_name:<18} {p.total:>5} {p.active:>7} {p.idle:>5} {p.idle_in_transaction:>6}"
        for p in status.processes
    ] or ["  (none)"]
    lines += ["", "largest tables (with their indexes and TOAST)      size      rows"]
    lines += [f"  {t.name:<44} {_size(t.bytes):>9} {t.rows if t.rows is not None else '?':>9}" for t in status.tables]
    lines += ["", "largest indexes                                    size  table"]
    lines += [f"  {i.name:<44} {_size(i.bytes):>9}  {i.table}" for i in status.indexes]
    return "\n".join(lines)


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"

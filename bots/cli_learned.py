"""`docrag learned`: the answers DocRag learned from resolved threads, and where it may learn."""
from __future__ import annotations

import click

from bots.cli_common import friendly_errors, settings_of


@click.group("learned")
def learned_group() -> None:
    """Answers learned from resolved Slack and Discord threads."""


@learned_group.command("list")
@click.option("--collection", default=None, help="Only this collection's learned answers.")
@click.pass_context
@friendly_errors
def learned_list(ctx: click.Context, collection: str | None) -> None:
    """List learned answers: id, collection, who confirmed it, when it expires, the thread."""
    from bots.wiring import open_database
    from core.ingest.learned import list_learned

    database = open_database(settings_of(ctx))
    rows = list_learned(database.sessions, collection)
    if not rows:
        click.echo("No learned answers.")
    for row in rows:
        click.echo(f"{row.id}\t{row.collection}\t{row.confirmed_by}\texpires {row.expires_at[:10]}\t{row.title}\t{row.link}")


@learned_group.command("remove")
@click.argument("document_id", type=int)
@click.pass_context
@friendly_errors
def learned_remove(ctx: click.Context, document_id: int) -> None:
    """Remove one learned answer (by the id `docrag learned list` shows)."""
    from bots.wiring import open_database
    from core.ingest.learned import remove_learned

    database = open_database(settings_of(ctx))
    if not remove_learned(database.sessions, document_id):
        raise click.ClickException(f"No learned answer has id {document_id} (documents are removed with `docrag ingest --prune`).")
    click.echo(f"Removed learned answer {document_id}.")


@learned_group.command("channel")
@click.argument("channel")
@click.option("--platform", type=click.Choice(["slack", "discord"]), default="slack", show_default=True)
@click.option("--workspace", required=True, help="Slack team id (T...) or Discord server id.")
@click.option("--on/--off", "enabled", required=True, help="Learn from this channel's resolved threads, or not.")
@click.pass_context
@friendly_errors
def learned_channel(ctx: click.Context, channel: str, platform: str, workspace: str, enabled: bool) -> None:
    """Turn learning from CHANNEL's resolved threads on or off (on by default; private channels never)."""
    from bots.wiring import open_database
    from core.tenancy.channels import set_learn_from_threads

    database = open_database(settings_of(ctx))
    with database.sessions.begin() as session:
        set_learn_from_threads(session, platform, workspace, channel, enabled)
    click.echo(f"Channel {channel}: resolved threads {'are' if enabled else 'are no longer'} learned.")

"""`docrag export` / `docrag delete` (one user's data), `docrag privacy` (a workspace's opt-out from
stored question text), `docrag console gaps` (regroup the knowledge gaps now) and `docrag console
digest` (the weekly digest's channels). See docs/console.md."""
from __future__ import annotations

import json

import click

from bots.cli_common import friendly_errors, settings_of

PLATFORMS = click.Choice(["slack", "discord", "web", "api", "cli"])


def _sessions(ctx: click.Context):
    from bots.wiring import open_database

    return open_database(settings_of(ctx)).sessions


@click.command("export")
@click.option("--platform", required=True, type=PLATFORMS, help="Where the user asks.")
@click.option("--user", "user_id", required=True, help="Their id on that platform (Slack U…, Discord snowflake).")
@click.option("--output", type=click.File("w"), default="-", help="File to write (default: standard output).")
@click.pass_context
@friendly_errors
def export_user_data(ctx: click.Context, platform: str, user_id: str, output) -> None:
    """Write everything DocRag stores about one user as JSON: questions, answers, feedback."""
    from core.console.privacy import export_user

    json.dump(export_user(_sessions(ctx), platform, user_id), output, indent=2, ensure_ascii=False)
    output.write("\n")


@click.command("delete")
@click.option("--platform", required=True, type=PLATFORMS, help="Where the user asks.")
@click.option("--user", "user_id", required=True, help="Their id on that platform.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
@friendly_errors
def delete_user_data(ctx: click.Context, platform: str, user_id: str, yes: bool) -> None:
    """Delete one user's questions (with their answers), the feedback they gave, and their console traces."""
    from core.console.privacy import delete_user

    if not yes:
        click.confirm(f"Delete every question and feedback of {platform} user {user_id}?", abort=True)
    deleted = delete_user(_sessions(ctx), platform, user_id)
    click.echo(f"Deleted {deleted.questions} questions (with their answers), {deleted.feedback} feedback, "
               f"{deleted.traces} console traces.")


@click.group("privacy")
def privacy_group() -> None:
    """A workspace's privacy choices."""


@privacy_group.command("text")
@click.argument("choice", type=click.Choice(["keep", "forget"]))
@click.option("--platform", required=True, type=PLATFORMS)
@click.option("--workspace", required=True, help="Slack team id, Discord guild id, or 'playground' for the web page.")
@click.pass_context
@friendly_errors
def question_text(ctx: click.Context, choice: str, platform: str, workspace: str) -> None:
    """Keep question text (the default), or forget it: counts, outcomes and timings only."""
    from core.console.privacy import set_question_text_storage

    set_question_text_storage(_sessions(ctx), platform, workspace, store=choice == "keep")
    if choice == "forget":
        click.echo(f"{platform} workspace {workspace}: question text is no longer stored (counts only); "
                   "the text of earlier console traces was removed.")
    else:
        click.echo(f"{platform} workspace {workspace}: question text is stored again.")


@click.group("console")
def console_group() -> None:
    """The documentation owners' console."""


@console_group.command("gaps")
@click.pass_context
@friendly_errors
def regroup_gaps(ctx: click.Context) -> None:
    """Regroup the unanswered questions of every collection into topics now."""
    from bots.wiring import build_container
    from core.console.jobs import refresh_all_gaps

    container = build_container(settings_of(ctx))
    for name, questions in refresh_all_gaps(container.database.sessions, container.embedder).items():
        click.echo(f"{name}: {questions} gap questions grouped")


@console_group.command("digest")
@click.argument("action", type=click.Choice(["add", "remove"]))
@click.option("--platform", required=True, type=click.Choice(["slack", "discord"]))
@click.option("--workspace", required=True, help="Slack team id or Discord guild id.")
@click.option("--channel", required=True, help="The channel id to post to.")
@click.option("--collection", default=None, help="The collection to report on (add; default: the default collection).")
@click.pass_context
@friendly_errors
def digest(ctx: click.Context, action: str, platform: str, workspace: str, channel: str, collection: str | None) -> None:
    """Send (add) or stop (remove) the weekly digest in a channel: Mondays from 09:00 UTC."""
    from core.console.digest import subscribe, unsubscribe

    sessions = _sessions(ctx)
    if action == "add":
        subscribe(sessions, platform, workspace, channel, collection or settings_of(ctx).default_collection)
        click.echo(f"{platform} channel {channel} will get the weekly digest.")
    elif unsubscribe(sessions, platform, workspace, channel):
        click.echo(f"{platform} channel {channel} will no longer get the weekly digest.")
    else:
        click.echo(f"{platform} channel {channel} was not getting the weekly digest.")


PRIVACY_COMMANDS = (export_user_data, delete_user_data, privacy_group, console_group)
